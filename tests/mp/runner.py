# Runs test functions of one firmware test file *inside MicroPython* and reports each on
# stdout between markers that tests/conftest.py parses:
#   @@BEGIN name / ...output and MicroPython traceback... / @@PASS name | @@FAIL name
# Usage: micropython -X heapsize=128K tests/mp/runner.py <test file> <name> [<name> ...]
import gc
import sys


def _load(path):
    slash = path.rfind("/")
    folder, fname = (path[:slash], path[slash + 1:]) if slash >= 0 else (".", path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return __import__(fname[:-3])


def main():
    path = sys.argv[1]
    names = sys.argv[2:]
    try:
        mod = _load(path)
    except BaseException as e:  # noqa: B036 - report anything the import raises
        print("@@IMPORTERROR")
        sys.print_exception(e, sys.stdout)
        print("@@ENDIMPORT")
        return
    for name in names:
        print("@@BEGIN", name)
        gc.collect()
        try:
            getattr(mod, name)()
            ok = True
        except BaseException as e:  # noqa: B036
            sys.print_exception(e, sys.stdout)
            ok = False
        print("@@PASS" if ok else "@@FAIL", name)


main()
