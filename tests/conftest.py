import os

# Headless rendering for the tests: OSMesa works on any CPU machine (scripts/setup.sh installs it).
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
