"""Painting: Wan tasks and OpenRouter image calls, followed to the end on the server.

The browser only shows what the database says. `scheduler.Painter`, a thread in every server
process, submits waiting tasks while the account has a free slot, polls the running ones and
keeps every result as soon as a task succeeds (`wan`, `openrouter`); `outcome` ends a task,
`files` writes the pictures, `form` reads the painting and editing forms.
"""
