"""The command line (`rugpt-tui COMMAND`): the parser, the options drawn from the settings'
declarations, and the headless commands — none of which imports Textual (only starting the
app does)."""
