"""Git over smart HTTP: clone, fetch and push a document's repository with a token."""
