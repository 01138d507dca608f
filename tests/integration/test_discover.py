"""
Discovery: the whole account in the directory (SPEC section 6).

A store on the stand-in (standin.make_store: checkout pages, events with
ticket images, products with media, fileIds and variant images) is
mounted with no manifest; every id must be listed with its size, every
image read from its public URL (no API call, no Authorization header),
every private file through /download, by-page/ must match the store, the
listing must persist, and a hostile or broken API must cost neither the
mount nor the files already found.
"""

import errno
import json
import os
import threading
import time

import pytest

from conftest import read_file, sha256

import standin

# The stand-in has no rate limit by default: let the walk run at full
# speed unless a test is about the budget.
FAST = "api_rate=1000"


def stats(m):
    raw = os.getxattr(m.mnt, "user.cpfs.stats").decode()
    return {k: int(v) for k, v in
            (ln.split("=", 1) for ln in raw.splitlines() if "=" in ln)}


def wait_walks(m, n=1, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if stats(m)["discovery_walks"] >= n:
            return stats(m)
        time.sleep(0.1)
    pytest.fail("discovery did not complete %d walk(s) in %ss; stats %r; "
                "log tail:\n%s" % (n, timeout, stats(m), m.log()[-3000:]))


def by_name_rule(entries):
    """entries: [(raw name, id)] -> {final name: id} (names.h's rule)."""
    def clean(s):
        s = "".join("_" if (ord(c) < 0x20 or c in "/\x7f") else c
                    for c in s)
        s = s.encode()[:200].decode("utf-8", "ignore")
        return "_" if s in ("", ".", "..") else s
    items = sorted(((clean(n), i.lower()) for n, i in entries))
    out, prev = {}, None
    for name, oid in items:
        if name == prev:
            out["%s~%s" % (name[:200], oid)] = oid
        else:
            out[name] = oid
            prev = name
    return out


@pytest.fixture
def store(servers):
    return standin.make_store(servers.data, servers.images, servers.store,
                              pages=250, events=12, products=40)


def expected_calls(servers, ex):
    groups = sum(len(servers.store.groups.get(e, ())) for e in ex.events)
    products = len(ex.products) - len(ex.unreachable)
    # 250 pages at 100 a call: 3; 12 events: 1; then one call per
    # product, per event (its groups) and per group (its types).
    return 3 + 1 + products + len(ex.events) + groups


def test_whole_store_listed_with_sizes(servers, cpfs, store):
    ex = store
    # the walk starts at once: keep the log from the start (the key
    # check is a download call, not counted below)
    m = cpfs(FAST, "names", manifest=None, discover=True, clear_logs=False)
    s = wait_walks(m)
    names = set(os.listdir(m.mnt)) - {"by-name", "by-page"}
    assert names == set(ex.files), (len(names), len(ex.files))
    for oid, data in ex.files.items():
        assert os.stat(m.path(oid)).st_size == len(data), oid
    log = servers.api.log
    assert log.count(kind="checkout-pages") == 3
    assert log.count(kind="events") == 1
    assert servers.discovery_calls() == expected_calls(servers, ex)
    assert s["discovery_calls"] == expected_calls(servers, ex)
    assert s["discovery_files"] == len(ex.files)
    assert s["discovery_last_walk"] > time.time() - 120
    assert log.count(kind="download",
                     pred=lambda r: r.id in ex.images) == 0
    # sizes of images came from the walk: no data request for them
    assert servers.image_gets() == 0
    # one call per private file for its size (none known from the JSON)
    assert servers.api_calls() == 1 + len(ex.private)


def test_images_public_private_through_download(servers, cpfs, store):
    ex = store
    m = cpfs(FAST, manifest=None, discover=True)
    wait_walks(m)
    servers.clear_logs()
    for oid in sorted(ex.images):
        assert sha256(read_file(m.path(oid))) == sha256(ex.files[oid]), oid
    assert servers.api_calls() == 0, "an image cost an API call"
    assert servers.images.auth_seen() == []
    assert servers.image_gets() >= len(ex.images)
    for oid in sorted(ex.private):
        assert sha256(read_file(m.path(oid))) == sha256(ex.files[oid]), oid
        assert servers.api_calls(oid) == 1, oid
    # attributes
    img = sorted(ex.images)[0]
    meta = ex.meta[img]
    get = lambda o, n: os.getxattr(m.path(o), "user.checkoutpage." + n)
    assert get(img, "purpose") == b"image"
    assert get(img, "url").decode() == meta["url"]
    assert int(get(img, "width")) == meta["width"]
    assert int(get(img, "height")) == meta["height"]
    priv = sorted(ex.private)[0]
    assert get(priv, "purpose") == b"file"
    with pytest.raises(OSError) as e:
        get(priv, "url")
    assert e.value.errno == errno.ENODATA


def test_by_page_matches_store(servers, cpfs, store):
    ex = store
    m = cpfs(FAST, "names", manifest=None, discover=True)
    wait_walks(m)
    want = by_name_rule([(name, owner)
                         for owner, (name, _) in ex.by_page.items()])
    top = os.path.join(m.mnt, "by-page")
    assert set(os.listdir(top)) == set(want)
    for dirname, owner in want.items():
        d = os.path.join(top, dirname)
        targets = set()
        for link in os.listdir(d):
            t = os.readlink(os.path.join(d, link))
            assert t.startswith("../../"), t
            targets.add(t[6:])
            # the link resolves to the file itself
            assert os.stat(os.path.join(d, link)).st_ino == \
                os.stat(m.path(t[6:])).st_ino
        assert targets == {i.lower() for i in ex.by_page[owner][1]}, dirname


def test_remount_lists_with_no_api_call(servers, cpfs, store, tmp_path):
    ex = store
    cache = tmp_path / "cache"
    cache.mkdir()
    m = cpfs(FAST, "names", manifest=None, discover=True, cache_dir=cache)
    wait_walks(m)
    first = {o: os.stat(m.path(o)) for o in ex.files}   # probes private
    pages_before = sorted(os.listdir(os.path.join(m.mnt, "by-page")))
    assert m.unmount() == 0
    m2 = cpfs(FAST, "names", manifest=None, discover=True, cache_dir=cache)
    names = set(os.listdir(m2.mnt)) - {"by-name", "by-page"}
    assert names == set(ex.files)
    for oid, st in first.items():
        st2 = os.stat(m2.path(oid))
        assert (st2.st_size, st2.st_ino, st2.st_mtime) == \
            (st.st_size, st.st_ino, st.st_mtime), oid
    assert sorted(os.listdir(os.path.join(m2.mnt, "by-page"))) == \
        pages_before
    time.sleep(0.5)
    assert servers.all_api_calls() == 0, servers.api.log.all()[:5]
    assert servers.data_gets() == 0 and servers.image_gets() == 0


def test_damaged_listing_heals(servers, cpfs, tmp_path):
    img = servers.store.add_image(servers.images, b"x" * 3000, name="a.jpg")
    servers.store.add_page(name="One", images=[img])
    cache = tmp_path / "cache"
    cache.mkdir()
    m = cpfs(FAST, manifest=None, discover=True, cache_dir=cache)
    wait_walks(m)
    assert m.unmount() == 0
    state = [p for p in cache.iterdir() if p.name.startswith("discovery")]
    assert len(state) == 1
    good = state[0].read_bytes()
    lines = good.decode().splitlines()
    assert lines[0].startswith("cpfs-listing 2 ") and \
        lines[-1] == "end 1 1", lines
    # cut short (no trailer), the old JSON format, and garbage: each is
    # ignored whole, with one warning, and the next walk rewrites it
    for bad in (good[:len(good) // 2], b'{"version":1,"files":[{"id":',
                os.urandom(300)):
        state[0].write_bytes(bad)
        m2 = cpfs(FAST, manifest=None, discover=True, cache_dir=cache)
        wait_walks(m2)
        assert img["fileId"] in os.listdir(m2.mnt)
        assert m2.log().count("damaged or of another version") == 1
        assert m2.unmount() == 0
        assert state[0].read_bytes().splitlines()[-1] == b"end 1 1"
    # one damaged line among good ones: that entry alone is skipped
    other = "%024x" % 0x6571c0de
    state[0].write_bytes(good.replace(b"\nend 1 1", (
        "\nf %s 5 -1 -1 - a%%zzb\nend 2 1" % other).encode()))
    servers.clear_logs()
    m3 = cpfs(FAST, "refresh=0", manifest=None, discover=True,
              cache_dir=cache)
    assert img["fileId"] in os.listdir(m3.mnt)
    assert other not in os.listdir(m3.mnt)
    assert "1 damaged entries" in m3.log()


def test_refresh_finds_new_page_concurrently_with_reads(servers, cpfs):
    img = servers.store.add_image(servers.images, b"a" * 5000, name="a.jpg")
    servers.store.add_page(name="First", images=[img])
    m = cpfs(FAST, "names", "refresh=1", manifest=None, discover=True)
    wait_walks(m)
    assert os.listdir(os.path.join(m.mnt, "by-page")) == ["First"]
    # readers and listers run while the walks replace the views
    stop, errors = threading.Event(), []

    def reader():
        while not stop.is_set():
            try:
                assert read_file(m.path(img["fileId"])) == b"a" * 5000
                for d in os.listdir(os.path.join(m.mnt, "by-page")):
                    for f in os.listdir(os.path.join(m.mnt, "by-page", d)):
                        os.stat(os.path.join(m.mnt, "by-page", d, f))
            except FileNotFoundError:
                pass  # a page that went away between listdir and stat
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return
    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    new = servers.store.add_image(servers.images, b"b" * 7000,
                                  name="new.jpg")
    page = servers.store.add_page(name="Second", images=[new])
    try:
        wait_walks(m, 3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert new["fileId"] in os.listdir(m.mnt)
    assert sorted(os.listdir(os.path.join(m.mnt, "by-page"))) == \
        ["First", "Second"]
    servers.store.remove_page(page["id"])
    n = stats(m)["discovery_walks"]
    wait_walks(m, n + 2)
    assert sorted(os.listdir(os.path.join(m.mnt, "by-page"))) == ["First"]
    assert read_file(m.path(new["fileId"])) == b"b" * 7000


def test_manifest_image_from_location(servers, cpfs):
    data = standin.make_png(40, 30, seed=3)
    oid = servers.images.put(data, name="logo.png",
                             content_type="image/png")
    line = json.loads(standin.manifest_line(
        oid, size=len(data), name="logo.png", type="image/png",
        purpose="image", location=servers.images.url_for(oid)))
    m = cpfs(manifest=[line])
    assert read_file(m.path(oid)) == data
    assert servers.api_calls() == 0
    assert os.getxattr(m.path(oid), "user.checkoutpage.purpose") == b"image"


def test_manifest_image_location_must_be_safe(servers, cpfs):
    """An image location that is not https (nor http to loopback) is a
    bad manifest line: reported with its number, never fetched."""
    oid = standin.object_id("bad-location")
    bad = {"id": oid, "purpose": "image",
           "location": "http://192.0.2.1/x.png"}
    good = servers.files["one"]
    m = cpfs(manifest=[good, bad])
    assert ":2:" in m.log() and "location" in m.log()
    assert oid not in os.listdir(m.mnt)
    assert read_file(m.path(good)) == servers.content[good]


def test_download_refusing_image_falls_back_once_found(servers, cpfs):
    """An image opened by id before discovery found it: /download refuses
    it (400, ENOENT); once the walk has its public URL it reads, with no
    further API call."""
    img = servers.store.add_image(servers.images, b"i" * 9000, name="i.jpg")
    servers.store.add_page(name="P", images=[img])
    oid = img["fileId"]
    servers.api.inject(delay=2, times=1,
                       when=lambda r: r.kind == "checkout-pages")
    m = cpfs(FAST, "neg_ttl=60", manifest=None, discover=True)
    with pytest.raises(OSError) as e:
        read_file(m.path(oid))
    assert e.value.errno == errno.ENOENT
    assert servers.api_calls(oid) == 1
    wait_walks(m)
    time.sleep(1.1)  # the kernel's entry for the id times out
    assert read_file(m.path(oid)) == b"i" * 9000
    assert servers.api_calls(oid) == 1


def test_private_id_without_page_still_opens(servers, cpfs):
    oid = servers.files["text"]
    m = cpfs(FAST, manifest=None, discover=True)
    wait_walks(m)
    assert oid not in os.listdir(m.mnt)       # nothing refers to it
    assert read_file(m.path(oid)) == servers.content[oid]


# ---- faults ----------------------------------------------------------

def test_500_and_429_mid_walk_resume(servers, cpfs, store):
    ex = store
    later = lambda r: r.kind == "checkout-pages" and \
        r.query.get("starting_after")
    servers.api.inject(status=500, times=3, when=later)
    servers.api.inject(status=429, times=2, headers={"Retry-After": "1"},
                       when=lambda r: r.kind == "events")
    m = cpfs(FAST, manifest=None, discover=True, clear_logs=False)
    # the mount works while the walk is paused
    priv = servers.files["five"]
    assert read_file(m.path(priv)) == servers.content[priv]
    s = wait_walks(m, timeout=90)
    assert set(os.listdir(m.mnt)) >= set(ex.files)
    assert s["discovery_walks"] == 1
    # the resumed walk asked for the failed page again, not from the start
    firsts = servers.api.log.count(
        kind="checkout-pages", pred=lambda r: not r.query.get(
            "starting_after"))
    assert firsts == 1
    assert "resuming" in m.log()


def test_cursor_that_repeats_ends_the_list(servers, cpfs):
    img = servers.store.add_image(servers.images, b"r" * 4000)
    page = servers.store.add_page(name="Loop", images=[img])
    servers.store.list_hook = lambda kind, q: (
        200, {"has_more": True, "total": 1, "data": [page]}) \
        if kind == "checkout-pages" else None
    m = cpfs(FAST, manifest=None, discover=True, clear_logs=False)
    s = wait_walks(m, timeout=30)
    assert img["fileId"] in os.listdir(m.mnt)
    assert m.log().count("does not advance") == 1
    assert servers.api.log.count(kind="checkout-pages") == 2
    assert s["discovery_walks"] == 1


def test_endless_has_more_ends_the_list(servers, cpfs):
    counter = [0]

    def endless(kind, q):
        if kind != "checkout-pages":
            return None
        counter[0] += 1
        fresh = {"id": standin.object_id("endless/%d" % counter[0]),
                 "name": "E%d" % counter[0]}
        return 200, {"has_more": True, "total": 3, "data": [fresh]}
    servers.store.list_hook = endless
    m = cpfs(FAST, manifest=None, discover=True)
    s = wait_walks(m, timeout=30)
    assert m.log().count("does not end") == 1
    assert counter[0] < 200
    assert s["discovery_walks"] == 1


@pytest.mark.parametrize("body", [
    # a 5 MiB list body
    b'{"has_more":false,"data":[{"id":"%s","name":"' % (b"a" * 24) +
    b"x" * (5 << 20) + b'"}]}',
    # 10 000 nested arrays
    b'{"data":' + b"[" * 10000 + b"]" * 10000 + b"}",
    b"{not json",
    b'{"data":{"id":5},"has_more":"yes"}',
], ids=["5MiB", "nested", "garbage", "wrong-types"])
def test_hostile_list_bodies(servers, cpfs, body):
    img = servers.store.add_image(servers.images, b"e" * 4000)
    servers.store.add_page(name="Gig", images=[img], event=True)
    servers.store.list_hook = lambda kind, q: (200, body) \
        if kind == "checkout-pages" else None
    m = cpfs(FAST, manifest=None, discover=True)
    s = wait_walks(m, timeout=30)
    # the other list still counts; the mount is up and serves
    assert img["fileId"] in os.listdir(m.mnt)
    assert read_file(m.path(img["fileId"])) == b"e" * 4000
    assert s["discovery_skipped"] >= 1


def test_wrong_types_skipped_and_counted(servers, cpfs):
    good = servers.store.add_image(servers.images, b"g" * 3000)
    priv = servers.files["one"]
    prod = servers.store.add_product(
        name="Odd", media=[good],
        extra={"fileIds": [priv, 12, "nope"],
               "gallery": [{"fileId": 7, "url": "x"},
                           {"fileId": "zz", "size": "big"},
                           {"fileId": good["fileId"], "width": "wide"}],
               "variants": "none"})
    servers.store.add_page(name="Shop", product_ids=[prod["id"]],
                           extra={"images": {"not": "a list"}})
    m = cpfs(FAST, manifest=None, discover=True)
    s = wait_walks(m, timeout=30)
    names = os.listdir(m.mnt)
    assert good["fileId"] in names and priv in names
    assert s["discovery_skipped"] >= 3
    assert read_file(m.path(priv)) == servers.content[priv]


def test_concurrent_opens_wait_for_at_most_one_discovery_call(servers, cpfs, store):
    ids = [servers.add(standin.make_bytes(1000 + i, seed=i))
           for i in range(20)]
    servers.api.inject(delay=0.3, times=None,
                       when=lambda r: r.kind != "download")
    m = cpfs(FAST, "discover", manifest=ids)
    servers.api.log.wait_for(3, timeout=10, kind="checkout-pages")
    marks = []
    for oid in ids:
        t0 = time.time()
        with open(m.path(oid), "rb") as fh:
            fh.read(1)
        marks.append((oid, t0))
    assert stats(m)["discovery_walks"] == 0, "the walk ended too soon"
    log = servers.api.log.all()
    for oid, t0 in marks:
        dl = [r for r in log if r.kind == "download" and r.id == oid]
        assert len(dl) == 1, oid
        between = [r for r in log if r.kind not in (None, "download") and
                   t0 <= r.time < dl[0].time]
        assert len(between) <= 1, (oid, between)


def test_no_discover_makes_no_list_call(servers, cpfs, store):
    m = cpfs("no_discover", manifest=None, discover=True)
    time.sleep(1)
    assert servers.discovery_calls() == 0
    assert os.listdir(m.mnt) == []


def test_discovery_shares_the_rate_budget(servers, cpfs, store):
    """With a 20/min budget the walk leaves room for opens: an open right
    after mounting is not held up behind the walk's calls."""
    oid = servers.files["one"]
    m = cpfs("api_rate=20", manifest=None, discover=True)
    time.sleep(2)
    t0 = time.time()
    assert read_file(m.path(oid)) == servers.content[oid]
    assert time.time() - t0 < 5
    # no more than 20 calls in any 60 s window, discovery's included
    times = sorted(r.time for r in servers.api.log.all())
    assert len([t for t in times if t < times[0] + 60]) <= 20
