"""The dashboard's pages, one module per page family: compose, gallery, detail, usage, budget."""
