"""JSON API routes, one module per domain. Routes call services; they hold no queries."""
