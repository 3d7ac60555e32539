"""ComfyUI: the wire vocabulary, the client and a protocol-faithful emulator."""
