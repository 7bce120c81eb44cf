"""The leaves every layer needs: identifiers, records, the NOTIFY hint grammar and the error catalogue.

`core` imports nothing else of restate-pg; everything else may import it.
"""
