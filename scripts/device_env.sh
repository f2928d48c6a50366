# Sourced by the device scripts: peers (SpikingJelly, snnTorch, loguru) from the carried .whl
# folder into /tmp/site, and PYTHONPATH to them and this tree (the copy is not installed).
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
