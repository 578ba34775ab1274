# The two entry points README.md gives a newcomer. Each runs a script in
# scripts/, which says what it does and checks what it needs.
.PHONY: run test

# portal-core on SQLite with seeded demo data, and the desktop inbox signed
# in to it when there is a display.
run:
	./scripts/demo

# Every test: what .ci/run runs after installing what the tests need.
test:
	./scripts/test
