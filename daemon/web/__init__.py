"""The web side (`paperdigest web`): one-click unsubscribe, the archive of sent digests, paper
pages, Atom feeds. tokens.py signs the links the mail carries (links.py), app.py serves them."""
