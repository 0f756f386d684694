"""The process the app lives in, below every widget: errors survived instead of ending the
app, the process ending on time whatever a worker does, a terminal that hangs up, the
garbage collector kept off the keystroke path, and two fixes to Textual itself."""
