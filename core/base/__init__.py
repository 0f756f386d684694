"""The leaf layer: what every other layer may use and that uses nothing of theirs — errors
shown as one line, where files go, the settings' declarations, writes that never destroy a
user's file, abandoning long reads, and the process's heap and terminal."""
