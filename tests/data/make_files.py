"""Makes the LAS, LAZ, E57 and PCD test files of tests/formats.rs with the
reference writers (laspy + lazrs, pye57) and by hand (PCD). Run once:
    pip install laspy lazrs pye57 numpy && python3 make_files.py
The values follow the formulas that tests/formats.rs checks."""
import struct
import numpy as np
import laspy
import pye57

N = 10
i = np.arange(N)


def las_file(point_format, version, compressed=False, extra=False, name=None):
    header = laspy.LasHeader(point_format=point_format, version=version)
    header.scales = np.array([0.001, 0.001, 0.001])
    header.offsets = np.array([512000.0, 5401000.0, 100.0])
    if extra:
        header.add_extra_dims([
            laspy.ExtraBytesParams(name="amplitude", type=np.float32),
            laspy.ExtraBytesParams(name="echo width", type=np.uint16),
            laspy.ExtraBytesParams(name="temperature", type=np.int16, scales=np.array([0.01]), offsets=np.array([10.0])),
        ])
    las = laspy.LasData(header)
    las.x = 512345.678 + i * 1.001
    las.y = 5401234.567 + i * 2.002
    las.z = 123.456 + i * 0.003
    las.intensity = 1000 + i
    las.return_number = 1 + i % 3
    las.number_of_returns = np.full(N, 3)
    las.classification = i + 1
    if point_format >= 6:
        las.scan_angle = (i - 5) * 1000
    else:
        las.scan_angle_rank = i - 5
    las.user_data = 7 * i
    las.point_source_id = 42 + i
    dims = set(las.point_format.dimension_names)
    if "gps_time" in dims:
        las.gps_time = 1e5 + i * 0.25
    if "red" in dims:
        las.red = i * 1000
        las.green = i * 2000
        las.blue = i * 3000
    if "nir" in dims:
        las.nir = i * 500
    if extra:
        las.amplitude = i * 0.5
        las["echo width"] = i * 3
        las.temperature = 20.0 + i * 0.25
    suffix = "laz" if compressed else "las"
    las.write(name or f"format{point_format}.{suffix}")


for fmt in range(11):
    las_file(fmt, "1.4" if fmt >= 6 else "1.2" if fmt <= 3 else "1.3")
for fmt in (1, 3, 6, 7, 8):
    las_file(fmt, "1.4" if fmt >= 6 else "1.2", compressed=True)
las_file(3, "1.4", extra=True, name="extra.las")
las_file(6, "1.4", compressed=True, extra=True, name="extra.laz")
# LAS 1.0: laspy writes 1.2 at least; patch the minor version of format 1.
data = bytearray(open("format1.las", "rb").read())
data[25] = 0
open("format1_v10.las", "wb").write(bytes(data))

# E57: two scans, the second turned 90 degrees about z and moved.
with_pose = [
    (np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.0])),
    (np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)]), np.array([10.0, 20.0, 1.5])),
]
e57 = pye57.E57("scans.e57", mode="w")
for scan, (rotation, translation) in enumerate(with_pose):
    data = {
        "cartesianX": (1.0 + i).astype(np.float64),
        "cartesianY": (2.0 * i).astype(np.float64),
        "cartesianZ": np.full(N, 0.5 + scan),
        "intensity": (0.1 * i).astype(np.float64),
        "colorRed": (10 * i).astype(np.uint8),
        "colorGreen": (20 * i).astype(np.uint8),
        "colorBlue": np.full(N, 255 - scan, dtype=np.uint8),
        "rowIndex": (i // 5).astype(np.int32),
        "columnIndex": (i % 5).astype(np.int32),
    }
    e57.write_scan_raw(data, rotation=rotation, translation=translation)
e57.close()


# PCD: x y z (float), normal_x.. (float), rgb (packed float), intensity
# (uint16), label (int32), a 2-count field and double timestamps.
def pcd_header(data):
    return (
        "# .PCD v0.7 - Point Cloud Data file format\n"
        "VERSION 0.7\n"
        "FIELDS x y z normal_x normal_y normal_z rgb intensity label hist timestamp\n"
        "SIZE 4 4 4 4 4 4 4 2 4 1 8\n"
        "TYPE F F F F F F F U I U F\n"
        "COUNT 1 1 1 1 1 1 1 1 1 2 1\n"
        f"WIDTH {N}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {N}\nDATA {data}\n"
    ).encode()


def pcd_row(k):
    packed = (10 * k) << 16 | (20 * k) << 8 | (255 - k)
    rgb = struct.unpack("<f", struct.pack("<I", packed))[0]
    n = np.array([k, 1.0, 2.0]) / np.linalg.norm([k, 1.0, 2.0])
    return [0.5 * k, -0.25 * k, 3.0 + k, *n.astype(np.float32), rgb, 100 * k, -k, k, 2 * k, 1e9 + 0.5 * k]


FMT = "<fffffffHiBBd"
rows = [pcd_row(k) for k in range(N)]
with open("cloud_ascii.pcd", "wb") as f:
    f.write(pcd_header("ascii"))
    for r in rows:
        f.write((" ".join(repr(float(v)) if isinstance(v, (float, np.floating)) else str(int(v)) for v in r) + "\n").encode())
with open("cloud_binary.pcd", "wb") as f:
    f.write(pcd_header("binary"))
    for r in rows:
        f.write(struct.pack(FMT, *r))


def lzf(data):
    """A greedy LZF compressor (liblzf's format): literal runs of up to 32
    bytes and back references of 3 to 264 bytes up to 8192 bytes back."""
    out, literal, at, last = bytearray(), bytearray(), 0, {}

    def flush():
        while literal:
            run = literal[:32]
            out.append(len(run) - 1)
            out.extend(run)
            del literal[:32]

    while at < len(data):
        key = bytes(data[at:at + 3])
        ref = last.get(key)
        last[key] = at
        if ref is not None and len(key) == 3 and at - ref - 1 < 8192:
            length = 3
            while at + length < len(data) and length < 264 and data[ref + length] == data[at + length]:
                length += 1
            flush()
            off, n = at - ref - 1, length - 2
            if n < 7:
                out.append((n << 5) | (off >> 8))
            else:
                out.append((7 << 5) | (off >> 8))
                out.append(n - 7)
            out.append(off & 0xFF)
            at += length
        else:
            literal.append(data[at])
            at += 1
    flush()
    return bytes(out)


# Column-major: each field's values of every point, field after field.
sizes = [4, 4, 4, 4, 4, 4, 4, 2, 4, 2, 8]
codes = ["f", "f", "f", "f", "f", "f", "f", "H", "i", "BB", "d"]
columns = bytearray()
for field, code in enumerate(codes):
    for r in rows:
        values = r[9:11] if field == 9 else [r[field] if field < 9 else r[11]]
        columns += struct.pack("<" + code, *values)
compressed = lzf(bytes(columns))
with open("cloud_compressed.pcd", "wb") as f:
    f.write(pcd_header("binary_compressed"))
    f.write(struct.pack("<II", len(compressed), len(columns)))
    f.write(compressed)
print("compressed", len(columns), "to", len(compressed))
