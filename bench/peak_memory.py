"""Source text the benches prepend to the code they run in a fresh interpreter: ``peak_kib()``, the peak RSS of
that process itself, VmHWM of its own address space. Not ru_maxrss: Linux carries the parent's high-water mark
over exec, so a child of a large parent (a bench after generating its data) would report the parent's size."""

PEAK = r"""
def peak_kib():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""
