"""Blender operators: one module per user action. These modules touch bpy (main thread only)."""
