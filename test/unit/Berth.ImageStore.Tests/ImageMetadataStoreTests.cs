using System.Text.Json;
using Berth.ImageStore.Images;
using Microsoft.Extensions.Logging.Abstractions;

namespace Berth.ImageStore.Tests;

/// <summary>Image records: a name belongs to one image, saves are whole, and what a crash left is made consistent.</summary>
public sealed class ImageMetadataStoreTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("berth-images-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static ImageRecord Image(char hex, params string[] tags) => new()
    {
        Id = "sha256:" + new string(hex, 64),
        RepoTags = [.. tags],
        RepoDigests = [.. tags.Select(t => t.Split(':')[0] + "@sha256:" + new string(hex, 64))],
        ManifestDigest = "sha256:" + new string('f', 64),
        ManifestMediaType = "application/vnd.oci.image.manifest.v1+json",
    };

    private ImageRecord OnDisk(char hex) =>
        JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(_directory, new string(hex, 64) + ".json")), ImageJsonContext.Default.ImageRecord)!;

    [Fact]
    public async Task Saving_an_image_under_a_new_name_keeps_its_names_and_takes_the_name_from_another()
    {
        using var store = new ImageMetadataStore(_directory, NullLogger.Instance);
        await store.SaveAsync(Image('a', "r.example/app:1"), CancellationToken.None);
        await store.SaveAsync(Image('b', "r.example/app:2"), CancellationToken.None);
        await store.SaveAsync(Image('a', "mirror.example/app:1"), CancellationToken.None);
        await store.SaveAsync(Image('a', "r.example/app:2"), CancellationToken.None);

        Assert.Equal(["r.example/app:1", "mirror.example/app:1", "r.example/app:2"], store.Get(Image('a').Id)!.RepoTags);
        Assert.Empty(store.Get(Image('b').Id)!.RepoTags);
        Assert.Equal(store.Get(Image('a').Id)!.RepoTags, OnDisk('a').RepoTags);
        Assert.Empty(OnDisk('b').RepoTags);
    }

    [Fact]
    public async Task A_cancelled_save_changes_nothing()
    {
        using var store = new ImageMetadataStore(_directory, NullLogger.Instance);
        await store.SaveAsync(Image('a', "r.example/app:1"), CancellationToken.None);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.SaveAsync(Image('a', "r.example/app:2"), new CancellationToken(canceled: true)));
        Assert.Equal(["r.example/app:1"], store.Get(Image('a').Id)!.RepoTags);
        Assert.Equal(["r.example/app:1"], OnDisk('a').RepoTags);
    }

    [Fact]
    public void A_name_a_crash_left_on_two_records_stays_with_the_one_written_last()
    {
        File.WriteAllBytes(Path.Combine(_directory, new string('b', 64) + ".json"), JsonSerializer.SerializeToUtf8Bytes(Image('b', "r.example/app:1", "r.example/app:2"), ImageJsonContext.Default.ImageRecord));
        File.SetLastWriteTimeUtc(Path.Combine(_directory, new string('b', 64) + ".json"), DateTime.UtcNow.AddMinutes(-1));
        File.WriteAllBytes(Path.Combine(_directory, new string('a', 64) + ".json"), JsonSerializer.SerializeToUtf8Bytes(Image('a', "r.example/app:1"), ImageJsonContext.Default.ImageRecord));

        using var store = new ImageMetadataStore(_directory, NullLogger.Instance);

        Assert.Equal(Image('a').Id, store.Find("r.example/app:1")!.Id);
        Assert.Equal(["r.example/app:2"], store.Get(Image('b').Id)!.RepoTags);
        Assert.Equal(["r.example/app:2"], OnDisk('b').RepoTags);
        Assert.Equal(["r.example/app:1"], OnDisk('a').RepoTags);
    }
}
