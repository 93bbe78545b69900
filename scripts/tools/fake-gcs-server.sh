# fake-gcs-server (Google Cloud Storage emulator, JSON API) into
# $BUNKER_TOOLS/fake-gcs-server-v1.56.1/. Sourced by scripts/tools.sh.
install_go fake-gcs-server v1.56.1 github.com/fsouza/fake-gcs-server@v1.56.1
