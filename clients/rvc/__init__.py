"""RVC voice conversion: one client, two transports (rvc-python's HTTP API, or an Applio-style Gradio app), and
stand-ins of both servers for tests and demos.

Plain Python: nothing in this package imports bpy.
"""
