"""The staff console: Django's admin site with a home page that says what needs attention."""
