"""The running backbone: settings, the broker launcher, the topic catalog and the `gdx` command line."""
