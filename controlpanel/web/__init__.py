"""The customer web UI: server-rendered pages (Django templates + htmx) over the
accounts and metering services and selectors. No business logic here: views parse the
request, call one service or selector, and render."""
