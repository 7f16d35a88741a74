"""The engine simulator fixture (`start_sim`) of the engine_sim tests, loaded under its own name."""
import importlib.util
import pathlib

_path = pathlib.Path(__file__).resolve().parents[1] / "engine_sim" / "conftest.py"
_spec = importlib.util.spec_from_file_location("engine_sim_fixtures", _path)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
start_sim = _module.start_sim
