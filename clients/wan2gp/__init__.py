"""Wan2GP (WanGP) video generation: one client, two transports (its MCP server, or a Wan2GP-compatible Gradio app).

Plain Python: nothing in this package imports bpy.
"""
