"""The process the app lives in, below every widget: its first frame drawn before Textual is
loaded, errors survived instead of ending the app, the process ending on time whatever a
worker does, a terminal that hangs up or a browser tab that closes, the garbage collector
kept off the keystroke path, and fixes to Textual itself."""
