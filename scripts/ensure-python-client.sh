#!/usr/bin/env bash
# Makes .venv/ with HubSpot's official Python client, used to prove the simulator against it.
# Prints the venv's python path.
exec "$(dirname "$0")/ensure-venv.sh" .venv hubspot-api-client 12.0.0 python
