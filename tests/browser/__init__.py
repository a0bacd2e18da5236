"""Real-browser tests (Playwright + Debian chromium), a package so its conftest stays apart."""
