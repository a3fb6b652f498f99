# Real third-party tools for medic's tests, built by the project's own scripts
# (test/tools/) from pinned sources via the Go module proxy, into the ignored
# folder $(TOOLS_DIR). Nothing needs to be installed by hand. Include this
# fragment from the top-level Makefile:
#
#   include Makefile.tools.mk
#
# Targets: tools (build all), tools-clean, test-realam.

MEDIC_TOOLS_MK := $(abspath $(lastword $(MAKEFILE_LIST)))
MEDIC_REPO_ROOT := $(patsubst %/,%,$(dir $(MEDIC_TOOLS_MK)))

# $(MEDIC_TOOLS_DIR) from the environment wins, as it does for the scripts and
# for test/realam.
TOOLS_DIR ?= $(or $(MEDIC_TOOLS_DIR),.tools)
TOOLS_DIR_ABS := $(abspath $(if $(filter /%,$(TOOLS_DIR)),$(TOOLS_DIR),$(MEDIC_REPO_ROOT)/$(TOOLS_DIR)))

ALERTMANAGER_VERSION := v0.34.2
ALERTMANAGER := $(TOOLS_DIR)/alertmanager-$(ALERTMANAGER_VERSION)/alertmanager
AMTOOL := $(TOOLS_DIR)/alertmanager-$(ALERTMANAGER_VERSION)/amtool

.PHONY: tools tools-clean test-realam

tools: $(ALERTMANAGER) $(AMTOOL)

# One script run builds both binaries (a grouped target, GNU make >= 4.3); the
# script is idempotent and takes a lock against concurrent builders.
$(ALERTMANAGER) $(AMTOOL) &:
	MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' bash '$(MEDIC_REPO_ROOT)/test/tools/build-alertmanager.sh' >/dev/null

tools-clean:
	rm -rf '$(TOOLS_DIR_ABS)'

# The Go helper would build Alertmanager itself when missing; depending on
# `tools` just makes the slow step visible.
test-realam: tools
	cd '$(MEDIC_REPO_ROOT)' && MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' go test ./test/realam/
