"""Models Basechat can run: the catalog, the embedded default, and local files."""
