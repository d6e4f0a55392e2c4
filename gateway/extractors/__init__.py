"""Text extractors, one module per family of formats; gateway.attachments chooses among them."""
