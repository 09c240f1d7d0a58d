"""fmnist's own plugins, registered like any other (see ``plugins.DEFAULT_PLUGINS``)."""
