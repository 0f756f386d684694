"""The faces of rugpt-tui, on top of `core`:

    cli       the command line; its headless commands never import Textual
    shell     the Textual app: start and quit, loading a model, the workspace, the palette,
              errors survived, hangups
    panes     Tokenize, Generate, Train and Chat — independent of each other
    widgets   what the panes share: fields, the token stream, dialogs, help, messages
    render    tokens and text as rich text, for the app and the command line alike
"""
