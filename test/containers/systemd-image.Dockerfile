# A booted machine: Debian bookworm with systemd as PID 1 (Ubuntu is what the clouds run; Debian is what these machines
# can build). awscli comes from Debian here, where Ubuntu's EC2 images get it from snap (the script's fallback).
FROM local/debian:bookworm
ENV container=docker
RUN apt-get update \
 && apt-get install -y --no-install-recommends systemd systemd-sysv dbus ca-certificates curl awscli \
 && rm -rf /var/lib/apt/lists/* \
 && systemctl mask systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
      systemd-modules-load.service systemd-udevd.service systemd-udev-trigger.service \
      systemd-remount-fs.service getty.target console-getty.service systemd-firstboot.service \
      sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
 && systemctl set-default multi-user.target
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
