"""One reader per on-disk data-set layout; each returns a :class:`lrcn.data.items.VideoSplit`."""
