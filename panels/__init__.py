"""Blender UI: the Sequencer sidebar tab and the add-on preferences. These modules touch bpy (main thread only)."""
