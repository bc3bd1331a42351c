"""The social-feed demo: three regions, live pages, a partition switch (see README.md here)."""
