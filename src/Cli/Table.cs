namespace Berth.Cli;

/// <summary>Columns padded to their widest cell, separated by three spaces, as crictl and docker print.</summary>
internal sealed class Table(params string[] headers)
{
    private readonly List<string[]> _rows = [headers];

    public void Add(params string[] cells) => _rows.Add(cells);

    public void WriteTo(TextWriter output)
    {
        var widths = new int[headers.Length];
        foreach (var row in _rows)
            for (var i = 0; i < row.Length; i++) widths[i] = Math.Max(widths[i], row[i].Length);
        foreach (var row in _rows)
        {
            for (var i = 0; i < row.Length; i++)
            {
                output.Write(row[i]);
                if (i < row.Length - 1) output.Write(new string(' ', widths[i] - row[i].Length + 3));
            }
            output.WriteLine();
        }
    }
}
