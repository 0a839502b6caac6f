"""The default guest image: a Debian kernel, busybox and dropbear with a small cloud-init-like boot script."""
