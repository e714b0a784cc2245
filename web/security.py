"""Security headers on every response: pages, the REST APIs, static files and errors alike.

The Content-Security-Policy allows scripts only from our own origin (no inline scripts, no
eval: the templates carry none, and htmx's eval-based features are off), and styles from our
own origin plus ``style`` attributes — the kanban colours its columns with one, and bpmn-js,
dmn-js and the properties panel build their DOM with them. No ``<style>`` elements are
needed (htmx's indicator styles are turned off in ``base.html``). Nobody may frame a page
(``frame-ancestors 'none'`` and, for older browsers, ``X-Frame-Options: DENY``).
"""
from __future__ import annotations

from flask import Flask, Response

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "style-src-elem 'self'",
    "style-src-attr 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)


def add_security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response
