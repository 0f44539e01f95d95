using System.Security.Cryptography;
using System.Text;

namespace Graft.Serve;

/// <summary>
/// The try-it page, kept as plain HTML, CSS and JavaScript files and put together into one page: the style and the
/// script go inline, allowed by their hashes in a Content-Security-Policy that lets the page reach nothing but this
/// server (no external script, font or image: it works offline, and injected markup cannot run).
/// </summary>
static class Page
{
    public static (string Html, string Policy) Build()
    {
        var (style, script) = (Resource("page.css"), Resource("page.js"));
        var html = Resource("page.html").Replace("/*style*/", style).Replace("/*script*/", script);
        var policy = $"default-src 'none'; script-src {Hash(script)}; style-src {Hash(style)}; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; " +
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
        return (html, policy);
    }

    static string Hash(string inline) => $"'sha256-{Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(inline)))}'";

    static string Resource(string name)
    {
        using var stream = typeof(Page).Assembly.GetManifestResourceStream($"Graft.Serve.Page.{name}")!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
