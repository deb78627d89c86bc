"""autoft's built-in plugins. Each module is registered through the ``autoft`` entry-point group,
exactly as a third-party plugin is (see pyproject.toml); ``gov_records`` is a data generator, not a plugin."""
