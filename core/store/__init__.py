"""What outlives a session: the settings file and the workspace database — history, runs
recorded step by step, conversations — with versioned migrations."""
