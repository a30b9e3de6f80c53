"""The main window's panels: each shows part of the LiveState and redraws when it changes (and
`layout` puts them together)."""
