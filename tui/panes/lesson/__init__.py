"""The lesson panel: the notebook's tasks as steps under the pane each is about (the shell
opens that pane and puts the step's example in it), with exercises checked against the
loaded model."""
