"""Music engines: the plug-in interface and the built-in engines."""
