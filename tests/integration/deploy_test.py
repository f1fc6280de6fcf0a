#!/usr/bin/env python3
"""The production path (docs/deploy.md), as far as this machine allows:

- scripts/package.sh builds the .deb (from the build under test): its
  files, modes, conffiles and Debian-only dependencies; its configuration
  holds no secret.
- packaging/dfm.service passes `systemd-analyze verify`.
- The service started the way the unit starts it: as an unprivileged user,
  systemd's bare environment, umask 077, secrets from a credentials
  directory, NOTIFY_SOCKET and WATCHDOG_USEC; it says READY=1 once it
  serves, feeds the watchdog, and says STOPPING=1 on SIGTERM.
- packaging/nginx-dfm.conf passes `nginx -t` and carries webhooks over
  HTTPS (a self-signed certificate made here) to that service; /v1/admin/
  is not reachable through it; an oversized body is refused.
- Where systemd is PID 1: the package installed and the unit run for real.

Usage: deploy_test.py --dfm PATH [unittest args]
"""
import atexit
import configparser
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import tomllib
import unittest

import dfmtest

DFM = None
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SECRET_WORDS = ("token", "secret", "password", "api_key", "auth_token")


def unit_service_section():
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(os.path.join(ROOT, "packaging", "dfm.service"))
    return cp["Service"]


_BUILT = {}


def built_package():
    """(directory, .deb) built by scripts/package.sh from the build under
    test, once per run; the directory is removed when the run ends."""
    if not _BUILT:
        d = tempfile.mkdtemp(prefix="dfm-pkg-")
        atexit.register(shutil.rmtree, d, True)
        build = os.path.dirname(os.path.dirname(os.path.abspath(DFM)))
        r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "package.sh"),
                            "--build-dir", build, "--out", d],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        _BUILT["dir"], _BUILT["deb"] = d, r.stdout.strip().splitlines()[-1]
    return _BUILT["dir"], _BUILT["deb"]


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir, cls.deb = built_package()

    def field(self, name):
        return subprocess.run(["dpkg-deb", "-f", self.deb, name], capture_output=True,
                              text=True, check=True).stdout.strip()

    def test_the_package_holds_the_binary_unit_configuration_and_site(self):
        self.assertRegex(os.path.basename(self.deb), r"^dfm_\d+\.\d+\.\d+_[a-z0-9]+\.deb$")
        listing = subprocess.run(["dpkg-deb", "-c", self.deb], capture_output=True, text=True,
                                 check=True).stdout
        files = {}
        for line in listing.splitlines():
            parts = line.split()
            files[parts[-1].lstrip(".")] = (parts[0], parts[1])
        expected = {
            "/usr/bin/dfm": "-rwxr-xr-x",
            "/etc/dfm/dfm.toml": "-rw-r--r--",
            "/lib/systemd/system/dfm.service": "-rw-r--r--",
            "/etc/nginx/sites-available/dfm": "-rw-r--r--",
            "/usr/share/doc/dfm/deploy.md": "-rw-r--r--",
            "/usr/share/doc/dfm/backup.md": "-rw-r--r--",
            "/usr/share/doc/dfm/copyright": "-rw-r--r--",
        }
        for path, mode in expected.items():
            self.assertIn(path, files, listing)
            self.assertEqual(files[path], (mode, "root/root"), path)
        self.assertEqual(self.field("Package"), "dfm")
        depends = self.field("Depends")
        for lib in ("libc6", "librocksdb", "libcurl", "libssl3", "libphonenumber", "adduser"):
            self.assertIn(lib, depends)
        self.assertNotIn("-dev", depends, "runtime libraries only")
        control = subprocess.run(["dpkg-deb", "-e", self.deb, os.path.join(self.dir, "control")],
                                 capture_output=True, text=True)
        self.assertEqual(control.returncode, 0, control.stderr)
        with open(os.path.join(self.dir, "control", "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/dfm/dfm.toml", "/etc/nginx/sites-available/dfm"])
        for script in ("postinst", "prerm", "postrm"):
            self.assertTrue(os.access(os.path.join(self.dir, "control", script), os.X_OK), script)

    def test_the_production_configuration_holds_no_secret_and_checks(self):
        with open(os.path.join(ROOT, "packaging", "dfm.toml"), "rb") as f:
            doc = tomllib.load(f)

        def walk(d, prefix=""):
            for k, v in d.items():
                if isinstance(v, dict):
                    yield from walk(v, prefix + k + ".")
                else:
                    yield prefix + k, v
        for key, _ in walk(doc):
            self.assertFalse(any(w in key for w in SECRET_WORDS), key)
        self.assertEqual(doc["storage"]["data_dir"], "/var/lib/dfm")
        r = subprocess.run([DFM, "config", "check", os.path.join(ROOT, "packaging", "dfm.toml")],
                           capture_output=True, text=True, env=dfmtest.environ(without_dfm=True))
        problems = [line for line in r.stdout.splitlines() if "error" in line.lower()]
        self.assertEqual(problems, [], r.stdout)

    @unittest.skipUnless(os.path.isdir("/run/systemd/system"),
                         "systemd is not PID 1 here: the unit is run as it runs instead (UnitAsRun)")
    def test_installed_and_run_by_systemd(self):
        subprocess.run(["dpkg", "-i", self.deb], check=True)
        os.makedirs("/etc/dfm/credentials", exist_ok=True)
        with open("/etc/dfm/dfm.env", "w") as f:
            f.write("DFM_VERITY_WEBHOOK_SECRET=%s\n" % dfmtest.VERITY_SECRET)
        subprocess.run(["systemctl", "start", "dfm"], check=True, timeout=120)
        try:
            status, _, _ = dfmtest.request("127.0.0.1", 8080, "GET", "/readyz")
            self.assertEqual(status, 200)
            show = subprocess.run(["systemctl", "show", "dfm", "-p", "StatusText"],
                                  capture_output=True, text=True).stdout
            self.assertIn("serving webhooks", show)
        finally:
            subprocess.run(["systemctl", "stop", "dfm"])
            subprocess.run(["dpkg", "--purge", "dfm"])


# A stand-in for systemctl: the unit's state is files in $FAKE_STATE, and
# every call is written to $FAKE_STATE/calls.
FAKE_SYSTEMCTL = """#!/bin/sh
echo "$*" >> "$FAKE_STATE/calls"
case "$*" in
  daemon-reload) ;;
  "enable dfm.service") touch "$FAKE_STATE/enabled" ;;
  "show -p ActiveState --value dfm.service")
    if [ -e "$FAKE_STATE/active" ]; then echo active
    elif [ -e "$FAKE_STATE/failed" ]; then echo failed
    else echo inactive; fi ;;
  "show -p MainPID --value dfm.service") cat "$FAKE_STATE/pid" 2>/dev/null || echo 0 ;;
  "restart dfm.service")
    if [ -e "$FAKE_STATE/start_fails" ]; then rm -f "$FAKE_STATE/active"; touch "$FAKE_STATE/failed"; exit 1; fi
    rm -f "$FAKE_STATE/failed"; touch "$FAKE_STATE/active" ;;
  *) echo "systemctl $*: not played" >&2; exit 1 ;;
esac
"""

# Run inside a mount namespace of its own: systemd seems to run (/run is a
# fresh tmpfs), /usr/bin/dfm is the build under test and /etc holds the
# case's files (overlays whose upper layers are in $W), /var is empty; the
# host's files are not touched.
NAMESPACE_SETUP = r"""
set -e
mount -t tmpfs dfm-run /run
mkdir -p /run/systemd/system
mount -t overlay dfm-bin -o "lowerdir=/usr/bin,upperdir=$W/bin,workdir=$W/bin-work" /usr/bin
mount -t overlay dfm-etc -o "lowerdir=/etc,upperdir=$W/etc,workdir=$W/etc-work" /etc
mount -t tmpfs dfm-var /var
if ! grep -q '^dfm:' /etc/passwd; then
  echo 'dfm:x:990:990::/var/lib/dfm:/usr/sbin/nologin' >> /etc/passwd
  echo 'dfm:x:990:' >> /etc/group
fi
exec env -i PATH="$W/fake:/usr/sbin:/usr/bin:/sbin:/bin" FAKE_STATE="$W/state" \
  ${SKIP:+DFM_SKIP_CONFIG_CHECK=$SKIP} sh "$W/postinst" configure "$PREVIOUS"
"""

# A configuration this build refuses unless Verity's secret is given.
NEEDS_VERITY_SECRET = "\n[verity]\ntimestamp_tolerance_s = 300\n"


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"),
                     "mount namespaces need root and unshare")
class MaintainerScripts(unittest.TestCase):
    """The package's postinst run as dpkg runs it at an install or an
    upgrade, against a played systemctl, with the build under test."""

    def setUp(self):
        pkg_dir, deb = built_package()
        self.w = tempfile.mkdtemp(prefix="dfm-maint-")
        for sub in ("bin", "bin-work", "etc/dfm", "etc-work", "fake", "state", "control"):
            os.makedirs(os.path.join(self.w, sub))
        subprocess.run(["dpkg-deb", "-e", deb, os.path.join(self.w, "control")], check=True)
        shutil.copy(os.path.join(self.w, "control", "postinst"), os.path.join(self.w, "postinst"))
        os.symlink(os.path.abspath(DFM), os.path.join(self.w, "bin", "dfm"))
        fake = os.path.join(self.w, "fake", "systemctl")
        with open(fake, "w") as f:
            f.write(FAKE_SYSTEMCTL)
        os.chmod(fake, 0o755)
        self.service = None

    def tearDown(self):
        if self.service:
            self.service.kill()
            self.service.wait()
        shutil.rmtree(self.w, ignore_errors=True)

    def state(self, name):
        return os.path.join(self.w, "state", name)

    def given(self, extra_config="", running=False, enabled=True, service_env=None,
              start_fails=False, failed=False, env_file=None):
        with open(os.path.join(ROOT, "packaging", "dfm.toml")) as f:
            conf = f.read()
        with open(os.path.join(self.w, "etc", "dfm", "dfm.toml"), "w") as f:
            f.write(conf + extra_config)
        if env_file is not None:
            with open(os.path.join(self.w, "etc", "dfm", "dfm.env"), "w") as f:
                f.write(env_file)
        for flag, name in ((running, "active"), (enabled, "enabled"), (start_fails, "start_fails"),
                           (failed, "failed")):
            if flag:
                open(self.state(name), "w").close()
        if running:
            # The old build's process, with the environment systemd gave it.
            self.service = subprocess.Popen(["sleep", "600"], env=service_env or {"PATH": "/usr/bin:/bin"})
            with open(self.state("pid"), "w") as f:
                f.write("%d\n" % self.service.pid)

    def configure(self, previous, skip_check=""):
        """postinst configure PREVIOUS: (exit status, stderr, systemctl calls)."""
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", NAMESPACE_SETUP],
                           env={"PATH": os.environ["PATH"], "W": self.w, "PREVIOUS": previous,
                                "SKIP": skip_check},
                           capture_output=True, text=True, timeout=120)
        calls = []
        if os.path.exists(self.state("calls")):
            with open(self.state("calls")) as f:
                calls = [c for c in f.read().splitlines() if c != "daemon-reload"]
        return r.returncode, r.stderr, calls

    def test_a_first_install_enables_the_unit_and_starts_nothing(self):
        self.given(enabled=False)
        rc, err, calls = self.configure("")
        self.assertEqual(rc, 0, err)
        self.assertEqual(calls, ["enable dfm.service", "show -p ActiveState --value dfm.service"])

    def test_an_upgrade_keeps_the_administrators_disable(self):
        self.given(running=True, enabled=False)
        rc, err, calls = self.configure("0.1.0")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("enable dfm.service", calls)
        self.assertFalse(os.path.exists(self.state("enabled")))
        self.assertIn("restart dfm.service", calls)

    def test_an_upgrade_the_new_build_refuses_fails_and_the_old_build_serves_on(self):
        self.given(extra_config="\n[nonsense]\nkey = 1\n", running=True)
        rc, err, calls = self.configure("0.1.0")
        self.assertNotEqual(rc, 0, "dpkg must see the upgrade fail")
        self.assertIn("nonsense.key", err)
        self.assertIn("old build still serves", err)
        self.assertNotIn("restart dfm.service", calls)
        self.assertIsNone(self.service.poll(), "the old process is left running")

    def test_an_upgrade_checks_with_the_services_own_secrets(self):
        # The secret is only in the running service's environment (as
        # systemd's EnvironmentFile or a credential gives it), not in
        # postinst's.
        self.given(extra_config=NEEDS_VERITY_SECRET, running=True,
                   service_env={"PATH": "/usr/bin:/bin",
                                "DFM_VERITY_WEBHOOK_SECRET": dfmtest.VERITY_SECRET})
        rc, err, calls = self.configure("0.1.0")
        self.assertEqual(rc, 0, err)
        self.assertIn("restart dfm.service", calls)

    def assert_lacks_the_verity_secret(self):
        """An upgrade whose service would lack Verity's secret: refused
        before the restart."""
        self.given(extra_config=NEEDS_VERITY_SECRET, running=True)
        rc, err, calls = self.configure("0.1.0")
        self.assertNotEqual(rc, 0)
        self.assertIn("verity.webhook_secret", err)
        self.assertNotIn("restart dfm.service", calls)

    def test_a_secret_the_service_lacks_is_refused_before_the_restart(self):
        self.assert_lacks_the_verity_secret()

    def test_an_upgrade_whose_restart_fails_fails_until_it_starts(self):
        self.given(running=True, start_fails=True)
        rc, err, calls = self.configure("0.1.0")
        self.assertIn("restart dfm.service", calls)
        self.assertNotEqual(rc, 0, "apt must not report success with the node down")
        # `dpkg --configure dfm` again: the failed unit is restarted, not
        # taken for one nobody runs.
        os.remove(self.state("calls"))
        rc, err, calls = self.configure("0.1.0")
        self.assertIn("restart dfm.service", calls)
        self.assertNotEqual(rc, 0)
        os.remove(self.state("start_fails"))
        rc, err, calls = self.configure("0.1.0")
        self.assertEqual(rc, 0, err)
        self.assertTrue(os.path.exists(self.state("active")))

    def test_a_secret_added_to_dfm_env_since_the_service_started_counts(self):
        # What the refusal tells the administrator to do, then
        # `dpkg --configure dfm`: the running process never had it.
        # Quoted as systemd allows, beside a line no shell could export.
        self.given(extra_config=NEEDS_VERITY_SECRET, running=True,
                   env_file=('# secrets\nDFM_VERITY_WEBHOOK_SECRET="%s"\n'
                             'DFM_VERITY_TIMESTAMP_TOLERANCE_S="600"\nDFM_ODD-NAME=1\n')
                   % dfmtest.VERITY_SECRET)
        rc, err, calls = self.configure("0.1.0")
        self.assertEqual(rc, 0, err)
        self.assertIn("restart dfm.service", calls)

    def test_dfm_env_is_read_as_systemd_reads_it(self):
        # A file saved with CRLF ends, an indented line, blanks around "="
        # and trailing blanks: systemd's EnvironmentFile= takes each (the
        # service would start), so the upgrade's check takes them too.
        self.given(extra_config=NEEDS_VERITY_SECRET, running=True,
                   env_file=('  DFM_VERITY_WEBHOOK_SECRET = %s  \r\n'
                             'DFM_VERITY_TIMESTAMP_TOLERANCE_S= 600   \r\n'
                             '\tDFM_OTHER="quoted value"  \r\n') % dfmtest.VERITY_SECRET)
        rc, err, calls = self.configure("0.1.0")
        self.assertEqual(rc, 0, err)
        self.assertIn("restart dfm.service", calls)

    def test_a_credential_added_since_the_service_started_counts(self):
        # The service reads its credentials from a directory of its own
        # (systemd's, each file of /etc/dfm/credentials as dfm_<name>); the
        # administrator adds the missing one where docs/deploy.md says, then
        # `dpkg --configure dfm`.
        own = os.path.join(self.w, "service-credentials")
        os.mkdir(own)
        with open(os.path.join(own, "dfm_DFM_OTHER"), "w") as f:
            f.write("x\n")
        creds = os.path.join(self.w, "etc", "dfm", "credentials")
        os.makedirs(creds)
        with open(os.path.join(creds, "DFM_VERITY_WEBHOOK_SECRET"), "w") as f:
            f.write(dfmtest.VERITY_SECRET + "\n")
        self.given(extra_config=NEEDS_VERITY_SECRET, running=True,
                   service_env={"PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": own})
        rc, err, calls = self.configure("0.1.0")
        self.assertEqual(rc, 0, err)
        self.assertIn("restart dfm.service", calls)

    def test_a_credential_the_unit_would_not_load_does_not_count(self):
        # systemd loads the folder's regular files only: a link to the
        # secret would leave the new process without it.
        creds = os.path.join(self.w, "etc", "dfm", "credentials")
        os.makedirs(creds)
        target = os.path.join(self.w, "secret")
        with open(target, "w") as f:
            f.write(dfmtest.VERITY_SECRET + "\n")
        os.symlink(target, os.path.join(creds, "DFM_VERITY_WEBHOOK_SECRET"))
        self.assert_lacks_the_verity_secret()

    def test_a_credential_removed_since_the_service_started_no_longer_counts(self):
        # The running process still holds its copy (dfm_<name>) of a file
        # the administrator has since removed from the folder.
        own = os.path.join(self.w, "service-credentials")
        os.mkdir(own)
        with open(os.path.join(own, "dfm_DFM_VERITY_WEBHOOK_SECRET"), "w") as f:
            f.write(dfmtest.VERITY_SECRET + "\n")
        os.makedirs(os.path.join(self.w, "etc", "dfm", "credentials"))
        self.given(extra_config=NEEDS_VERITY_SECRET, running=True,
                   service_env={"PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": own})
        rc, err, calls = self.configure("0.1.0")
        self.assertNotEqual(rc, 0)
        self.assertNotIn("restart dfm.service", calls)

    def test_the_check_can_be_skipped(self):
        self.given(extra_config=NEEDS_VERITY_SECRET, running=True)
        rc, err, calls = self.configure("0.1.0", skip_check="1")
        self.assertEqual(rc, 0, err)
        self.assertIn("restart dfm.service", calls)


class UnitFile(unittest.TestCase):
    def test_the_unit_passes_systemd_analyze_verify(self):
        d = tempfile.mkdtemp(prefix="dfm-unit-")
        try:
            with open(os.path.join(ROOT, "packaging", "dfm.service")) as f:
                text = f.read()
            # The binary is not installed here: the one under test stands in.
            path = os.path.join(d, "dfm.service")
            with open(path, "w") as f:
                f.write(text.replace("/usr/bin/dfm", os.path.abspath(DFM)))
            r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("dfm.service", r.stderr, r.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_the_unit_is_hardened(self):
        s = unit_service_section()
        for key, value in {"Type": "notify", "ProtectSystem": "strict", "StateDirectory": "dfm",
                           "NoNewPrivileges": "yes", "PrivateTmp": "yes", "CapabilityBoundingSet": "",
                           "Restart": "on-failure", "User": "dfm", "UMask": "0077"}.items():
            self.assertEqual(s.get(key), value, key)
        self.assertIn("WatchdogSec", s)

    def test_a_configuration_serve_refuses_is_not_restarted(self):
        """`dfm serve` refusing its configuration exits 2, which the unit
        does not restart (it would every RestartSec for ever: systemd's
        start limit never counts 5 starts 2 s apart within 10 s)."""
        self.assertIn("2", unit_service_section().get("RestartPreventExitStatus", "").split())
        d = tempfile.mkdtemp(prefix="dfm-refused-")
        try:
            path = os.path.join(d, "dfm.toml")
            with open(path, "w") as f:
                f.write(f'[storage]\ndata_dir = "{d}/data"\n[server]\nthreads = "many"\n')
            r = subprocess.run([DFM, "serve", "-c", path], capture_output=True, text=True,
                               env=dfmtest.environ(without_dfm=True), timeout=30)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("server.threads", r.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class UnitAsRun(unittest.TestCase):
    """dfm as the unit runs it, behind the packaged nginx site."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dfm-asrun-")
        os.chmod(self.dir, 0o755)
        self.port, self.admin_port, self.https_port, self.http_port = (dfmtest.free_port() for _ in range(4))
        self.data = os.path.join(self.dir, "state")
        os.mkdir(self.data, 0o700)
        os.chown(self.data, 65534, 65534)
        self.creds = os.path.join(self.dir, "credentials")
        os.mkdir(self.creds, 0o500)
        with open(os.path.join(self.creds, "DFM_VERITY_WEBHOOK_SECRET"), "w") as f:
            f.write(dfmtest.VERITY_SECRET + "\n")
        os.chmod(os.path.join(self.creds, "DFM_VERITY_WEBHOOK_SECRET"), 0o400)
        os.chown(os.path.join(self.creds, "DFM_VERITY_WEBHOOK_SECRET"), 65534, 65534)
        os.chown(self.creds, 65534, 65534)
        with open(os.path.join(ROOT, "packaging", "dfm.toml")) as f:
            conf = f.read()
        conf = (conf.replace("127.0.0.1:8080", f"127.0.0.1:{self.port}")
                .replace("127.0.0.1:8081", f"127.0.0.1:{self.admin_port}")
                .replace('"/var/lib/dfm"', f'"{self.data}"')
                .replace("min_free_mb = 1024", "min_free_mb = 1")
                .replace("https://dfm.example.com", f"https://dfm.example.com:{self.https_port}"))
        self.config = os.path.join(self.dir, "dfm.toml")
        with open(self.config, "w") as f:
            f.write(conf)
        os.chmod(self.config, 0o644)
        self.notify_path = os.path.join(self.dir, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        os.chmod(self.notify_path, 0o777)
        self.proc = None
        self.nginx = None

    def tearDown(self):
        if self.nginx and self.nginx.poll() is None:
            self.nginx.kill()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_as_unit(self):
        s = unit_service_section()
        exec_start = s["ExecStart"].split()
        self.assertEqual(exec_start[0], "/usr/bin/dfm")
        argv = [os.path.abspath(DFM)] + [self.config if a == "/etc/dfm/dfm.toml" else a for a in exec_start[1:]]
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8", "HOME": self.data, "USER": "nobody",
               "CREDENTIALS_DIRECTORY": self.load_credentials(), "NOTIFY_SOCKET": self.notify_path,
               "WATCHDOG_USEC": "1000000", "ASAN_OPTIONS": "detect_leaks=0"}
        umask = int(s["UMask"], 8)
        self.log = open(os.path.join(self.dir, "dfm.log"), "wb")
        self.proc = subprocess.Popen(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs",
             "--inh-caps=-all", "--bounding-set=-all", "--"] + argv,
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd="/",
            preexec_fn=lambda: os.umask(umask))

    def load_credentials(self):
        """The unit's credentials directory as systemd 252 fills it from its
        LoadCredential= lines (systemd.exec(5)): ID:FILE as ID; ID:DIRECTORY
        as ID_<name> for each file in it. /etc/dfm/credentials is the
        test's folder `credentials`."""
        run = os.path.join(self.dir, "run-credentials")
        os.mkdir(run, 0o500)
        with open(os.path.join(ROOT, "packaging", "dfm.service")) as f:
            lines = [line for line in f if line.startswith("LoadCredential=")]
        self.assertTrue(lines, "the unit loads credentials")
        for line in lines:
            cred_id, path = line.strip().split("=", 1)[1].split(":", 1)
            path = self.creds if path == "/etc/dfm/credentials" else path
            # (regular files only: links and dot files are not loaded)
            regular = lambda n: (not n.startswith(".") and os.path.isfile(os.path.join(path, n))
                                 and not os.path.islink(os.path.join(path, n)))
            files = ({cred_id + "_" + n: os.path.join(path, n) for n in os.listdir(path) if regular(n)}
                     if os.path.isdir(path) else {cred_id: path})
            for name, src in files.items():
                shutil.copy(src, os.path.join(run, name))
                os.chown(os.path.join(run, name), 65534, 65534)
        os.chown(run, 65534, 65534)
        return run

    def messages(self, until, timeout=20):
        """Datagrams from the service until one starts with `until`."""
        got = []
        self.notify.settimeout(0.2)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                got.append(self.notify.recv(4096).decode())
            except socket.timeout:
                if self.proc.poll() is not None:
                    break
                continue
            if got[-1].startswith(until):
                return got
        with open(os.path.join(self.dir, "dfm.log")) as f:
            self.fail(f"no {until} from the service; got {got}; log:\n{f.read()[-3000:]}")

    def start_nginx(self):
        ng = os.path.join(self.dir, "nginx")
        os.makedirs(os.path.join(ng, "logs"))
        cert, key = os.path.join(ng, "cert.pem"), os.path.join(ng, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=dfm.example.com", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        with open(os.path.join(ROOT, "packaging", "nginx-dfm.conf")) as f:
            site = f.read()
        site = site.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{self.port};")
        site = re.sub(r"listen \[::\]:\d+[^;]*;\n", "", site)
        site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{self.https_port} ssl http2;")
        site = site.replace("listen 80;", f"listen 127.0.0.1:{self.http_port};")
        site = site.replace("/etc/letsencrypt/live/dfm.example.com/fullchain.pem", cert)
        site = site.replace("/etc/letsencrypt/live/dfm.example.com/privkey.pem", key)
        with open(os.path.join(ng, "site.conf"), "w") as f:
            f.write(site)
        conf = os.path.join(ng, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
worker_processes 1;
pid {ng}/nginx.pid;
error_log {ng}/logs/error.log warn;
daemon off;
events {{ worker_connections 256; }}
http {{
  access_log {ng}/logs/access.log;
  client_body_temp_path {ng}/body;
  proxy_temp_path {ng}/proxy;
  fastcgi_temp_path {ng}/fastcgi;
  uwsgi_temp_path {ng}/uwsgi;
  scgi_temp_path {ng}/scgi;
  include {ng}/site.conf;
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        t = subprocess.run([nginx, "-t", "-c", conf, "-p", ng], capture_output=True, text=True)
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertIn("test is successful", t.stderr)
        self.nginx = subprocess.Popen([nginx, "-c", conf, "-p", ng],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.https_port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.fail("nginx did not start")

    def https(self, method, path, body=None, headers=None):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", self.https_port, context=ctx, timeout=10)
        try:
            h = {"Host": "dfm.example.com"}
            h.update(headers or {})
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def test_started_as_the_unit_starts_it_it_serves_webhooks_over_https_through_nginx(self):
        self.start_as_unit()
        got = self.messages("READY=1")
        self.assertIn("STATUS=serving webhooks", got[-1])
        status, _, _ = dfmtest.request("127.0.0.1", self.port, "GET", "/readyz")
        self.assertEqual(status, 200, "READY=1 only once it serves")
        watchdog = self.messages("WATCHDOG=1", timeout=5)
        self.assertTrue(watchdog)

        self.start_nginx()
        body = dfmtest.verity_body("deploy-1", "through nginx")
        status, answer = self.https("POST", "/webhooks/verity", body, {
            "Content-Type": "application/json",
            "X-Texting-Signature": dfmtest.verity_signature(body)})
        self.assertEqual(status, 200, answer)
        self.assertEqual(json.loads(answer)["status"], "accepted")
        # Over HTTP: redirected to HTTPS.
        status, _, _ = dfmtest.request("127.0.0.1", self.http_port, "GET", "/webhooks/verity",
                                       headers={"Host": "dfm.example.com"})
        self.assertEqual(status, 301)
        # The admin endpoints are not reachable through the site.
        status, _ = self.https("POST", "/v1/admin/reload", b"{}", {"Content-Type": "application/json"})
        self.assertEqual(status, 404)
        status, _ = self.https("POST", "/webhooks/verity", b"x" * (2 << 20),
                               {"Content-Type": "application/json"})
        self.assertEqual(status, 413)
        # A signature that does not match is refused by dfm, through nginx too.
        status, answer = self.https("POST", "/webhooks/verity", body, {
            "Content-Type": "application/json", "X-Texting-Signature": "00" * 32})
        self.assertEqual(status, 401, answer)

        # What it wrote belongs to its user alone.
        for root, dirs, files in os.walk(self.data):
            for name in dirs + files:
                st = os.lstat(os.path.join(root, name))
                self.assertEqual(st.st_uid, 65534, name)
                self.assertEqual(st.st_mode & 0o077, 0, f"{name} is open to others")

        self.proc.send_signal(15)
        self.messages("STOPPING=1", timeout=30)
        self.assertEqual(self.proc.wait(timeout=30), 0)


if __name__ == "__main__":
    DFM, argv = dfmtest.dfm_args()
    unittest.main(argv=argv)
