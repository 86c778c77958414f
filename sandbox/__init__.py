"""Images, containers and verification: where a patch meets the repo's own tests."""
