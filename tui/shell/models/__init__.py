"""Models, from the shell: loading one in the background, the model picker, and comparing
several side by side."""
