"""Backend clients: one folder or module per backend, each knowing its own wire protocol and nothing of Blender.

Plain Python: nothing in this package imports bpy.
"""
