"""The protected test run: what scores a notebook's autograded tests.

Run by the grader as ``python -m crsky.grading.runner`` inside the grading sandbox, with a
plan on standard input (JSON, :func:`crsky.grading.answers.plan`): the release's set-up
cells, the student's answer cells (and the student cells an answer needs), the
instructor's test cells, in notebook order. It writes one JSON line per step to standard
output and nothing else there. Why the verdicts cannot be changed by the student's code,
other than by the answer itself:

* **Student code never runs on the grader's stack.** Every cell runs in one worker thread
  (Keras keeps its state per thread); the main thread only waits, compares and reports.
  Python lets signal handlers be set from the main thread only, so no student code can
  ever run on the main thread: the main thread's frames, its snapshot and its channel are
  out of reach. Python 3.11 raises no audit event for a new thread: once student code has
  run, every thread but the main one is under the audit hook, and a thread of the
  student's that still runs after its step is a finding.
* **Trusted references.** After the set-up cells and before any student code, the main
  thread takes a snapshot (immutable tuples) of the attributes of every loaded module
  (``builtins`` and ``sys`` included), of ``sys.meta_path``, the signal handlers and the
  interval timers. After every student step it names each difference precisely (a
  *finding*) and puts the originals back, so the tests run against the real numpy, Keras,
  networkx and course package. The classes those modules define are compared too (their
  own dicts: Python 3.11 raises no audit event for ``Class.name = value``), and an
  ``object.__setattr__`` on a class is recorded by the audit hook and undone.
* **The main thread cannot be interrupted.** ``SIGINT`` is ignored before any cell runs (so
  ``_thread.interrupt_main`` does nothing), and an exception that still reached the main
  thread ends the process at once (``os._exit``), never through ``sys.excepthook``.
* **What reaches below that is refused** while student code runs (audit hook, PEP 578):
  ``ctypes``, ``gc.get_objects``/``get_referrers``/``get_referents``, ``sys._current_frames``,
  ``sys.settrace``/``setprofile``, new audit hooks, threads, ``os.fork``, and rewriting the
  code or defaults of a function that is not the student's own.
* **Tests read their own data.** Each test cell runs in a fresh namespace built from the
  set-up's names (arrays copied into read-only buffers that cannot be made writable
  again) plus the answers' names; afterwards the namespace is checked: a name the
  student's code rebound during the test is a finding and fails the test. The bytes of
  those arrays are compared with a digest taken before any student code (a write below
  Python, ``ctypes.memset``, raises no audit event), when each answer returns and after
  each step.
* **The course's own answers are watched.** The package ships code that answers some
  exercises (the reference DGCNN, the textbook's kernel, the pair counts). The plan names
  them (``course_answers``, from the instructor's answer cells' metadata); before any
  student code runs, each such function gets a first line that raises an audit event
  (its code object is replaced in place, so every reference to it, imported under any
  name, runs that line). Called while a test runs from the student's code, it is a
  finding that names the function and the exercise; a test's own call is not.
* **Checked when each answer returns.** A test calls the answers through a wrapper: when a
  call returns, the trusted state is compared and put back right away, so a patch the
  answer makes and would undo itself later (after the test's next comparison) is found and
  gone before the test compares anything.
* **One message per step.** The worker reports through a pipe; the main thread accepts a
  step as finished only when the worker thread is really back in its idle wait, and
  treats any other bytes on the pipe, or a pipe replaced by ``dup2``, as a finding.

What a finding means is the grader's business (:mod:`crsky.grading.nbgrader_steps`): the
notebook's test points are withheld for review, with each finding's words.

Not closed here: the tests and the answers share this process, so an answer a test calls
can reach the test's frame (``sys._getframe``, a traceback) and change the test's own names,
read its constants, or patch a library for one call and undo it before any comparison
(``KNOWN_HOLES`` in tests/test_corpus.py; grading/README.md, section 5).
"""

import _thread
import builtins
import functools
import json
import os
import select
import sys
import threading

BLOCKED_EVENTS = frozenset({
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames", "sys.settrace",
    "sys.setprofile", "sys.addaudithook", "_thread.start_new_thread", "os.fork", "os.forkpty",
    "threading.settrace", "threading.setprofile", "sys.monitoring.register_callback",
})
FUNCTION_INTERNALS = frozenset({"__code__", "__defaults__", "__kwdefaults__", "__globals__", "__closure__"})
OUTPUT_LIMIT = 20_000   # characters of a step's stdout/stderr kept for the feedback


class StepBuffer:
    """A text stream that keeps what a step printed (up to OUTPUT_LIMIT characters)."""

    def __init__(self):
        self.parts, self.size = [], 0

    def write(self, text):
        text = str(text)
        if self.size < OUTPUT_LIMIT:
            self.parts.append(text[:OUTPUT_LIMIT - self.size])
            self.size += len(self.parts[-1])
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    def getvalue(self):
        return "".join(self.parts)


def _freeze(value, np):
    """Set-up data as the tests get it: arrays copied into buffers that cannot be made
    writable again, lists and tuples of them as tuples, dicts as read-only mappings."""
    import types

    if np is not None and type(value) is np.ndarray:
        return np.frombuffer(value.tobytes(), dtype=value.dtype).reshape(value.shape)
    if type(value) in (list, tuple):
        return tuple(_freeze(item, np) for item in value)
    if type(value) is dict:
        return types.MappingProxyType({key: _freeze(item, np) for key, item in value.items()})
    return value


def _frozen_arrays(value, label):
    """``(label, array)`` for every array inside a frozen set-up value (:func:`_freeze`)."""
    import types

    if type(value) is tuple:
        for index, item in enumerate(value):
            yield from _frozen_arrays(item, f"{label}[{index}]")
    elif type(value) is types.MappingProxyType:
        for key, item in value.items():
            yield from _frozen_arrays(item, f"{label}[{key!r}]")
    elif type(value).__name__ == "ndarray" and type(value).__module__ == "numpy":
        yield label, value


def _data_digests(base, blake2b):
    """``((name, array, digest), ...)`` of the tests' read-only arrays, taken before any student
    code runs, with ``blake2b`` (:func:`hashlib.blake2b`). Python raises no audit event for a
    write below it (``ctypes.memset`` over an array's buffer): the bytes themselves are
    compared instead (:func:`_changed_data`)."""
    return tuple((label, array, blake2b(array.data, digest_size=32).digest())
                 for name, value in base.items() for label, array in _frozen_arrays(value, name))


def _changed_data(digests, blake2b):
    """Findings for the tests' read-only arrays whose bytes changed since :func:`_data_digests`.
    ``blake2b``: :func:`hashlib.blake2b` as bound before any student code ran (the module's
    attribute may have been replaced since)."""
    return [f"the test's read-only data {label} was overwritten in memory (below Python, e.g. with ctypes)"
            for label, array, digest in digests if blake2b(array.data, digest_size=32).digest() != digest]


def _snapshot_modules():
    """((module name, module dict, ((attribute, value), ...)), ...) for every loaded module."""
    out = []
    for name, module in list(sys.modules.items()):
        try:
            namespace = object.__getattribute__(module, "__dict__")
        except (AttributeError, TypeError):
            continue
        if type(namespace) is dict:
            out.append((name, namespace, tuple(namespace.items())))
    return tuple(out)


def _worker(commands, results, state, student_box, setup_steps, _set_idle,
            _read=os.read, _write=os.write, _exec=exec, _eval=eval, _type=type, _str=str,
            _isinstance=isinstance, _float=float, _int=int, _bool=bool, _len=len, _dict=dict, _tuple=tuple,
            _base_exc=BaseException, _sys=sys, _builtins_items=tuple(vars(builtins).items()), _callable=callable):
    """The worker thread: runs the step whose index each command names, until index -1.

    Everything it uses is bound here, before any student code runs: rebinding names of a
    module, of the builtins or of this module cannot change what it does, and what it
    reads (the steps, the tests' data) is immutable."""
    import marshal

    dumps = marshal.dumps
    builtin_names = frozenset(name for name, _ in _builtins_items)
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    _prepare_shell(shell)
    user = shell.user_ns
    state.append(shell)
    n_setup = _len(setup_steps)
    student_steps = wrap_answer = check_state = None
    _set_idle()
    while True:
        header = _read(commands, 8)
        index = _int(header) if header else -1
        if index < 0:
            return
        if index < n_setup:
            kind, source, compiled, base, answers = setup_steps[index]
        else:
            if student_steps is None:
                student_steps = student_box[0]     # taken once, before any student code runs
                wrap_answer, check_state = student_box[1]
            kind, source, compiled, base, answers = student_steps[index - n_setup]
        stdout, stderr = StepBuffer(), StepBuffer()
        _sys.stdout, _sys.stderr = stdout, stderr
        status, ename, evalue, value, rebound = "ok", "", "", None, ()
        try:
            if kind == "test":
                namespace = _dict(base)
                for name in answers:
                    if name in user:
                        answer = user[name]
                        namespace[name] = (wrap_answer(answer, check_state)
                                           if _callable(answer) and not _isinstance(answer, _type) else answer)
                test_builtins = namespace["__builtins__"] = _dict(_builtins_items)
                before = _tuple(namespace.items())
                _exec(compiled[0], namespace)
                last = _eval(compiled[1], namespace) if compiled[1] is not None else None
                if _type(last) in (_int, _float):
                    value = _float(last)
                rebound = _tuple(name for name, item in before if namespace.get(name, before) is not item)
                # The test's built-ins (reachable as f_builtins of its frame) are its own too.
                rebound += _tuple(f"builtins.{name}" for name, item in _builtins_items
                                  if test_builtins.get(name, before) is not item)
                rebound += _tuple(f"builtins.{name}" for name in test_builtins if name not in builtin_names)
            else:
                result = shell.run_cell(source, store_history=True)
                error = result.error_before_exec or result.error_in_exec
                if error is not None:
                    status, ename, evalue = "error", _type(error).__name__, _str(error)[:2000]
        except _base_exc as error:  # a failing test: its exception is the verdict
            status, ename, evalue = "error", _type(error).__name__, _str(error)[:2000]
        _sys.stdout, _sys.stderr = _sys.__stdout__, _sys.__stderr__
        try:
            message = dumps((index, status, _str(ename), _str(evalue), value, _str(stdout.getvalue()),
                             _str(stderr.getvalue()), rebound))
        except _base_exc:
            message = dumps((index, "error", "TamperingDetected", "the step's result could not be read", None,
                             "", "", ()))
        _set_idle()
        _write(results, b"%08d" % _len(message) + message)


def _checked_call(function, check_state):
    """The answer ``function`` as a test calls it: when the call returns (or raises), the trusted
    state is compared and put back at once (``check_state``), so a patch the answer made, and
    would undo itself later in the test, is gone before the test's next comparison."""
    def answer(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            check_state()
    return answer


def _is_memory_file(path, _fsdecode=os.fsdecode, _split=os.path.split, _normpath=os.path.normpath,
                    _realpath=os.path.realpath):
    """True for /proc/<pid|self|thread-self>/[task/<tid>/]mem, or a relative path named mem
    (opened from a folder of /proc through dir_fd), or a link to one: the process's own
    memory, writable."""
    try:
        text = _fsdecode(path)
    except TypeError:
        return False  # a file descriptor
    for candidate in (text, _realpath(text)):
        folder, name = _split(_normpath(candidate))
        if name == "mem" and (not candidate.startswith("/") or candidate.startswith("/proc/")):
            return True
    return False


def _prepare_shell(shell):
    """The notebook's shell as a kernel's, for what the grader cannot offer the way Jupyter does.

    * ``!command``: IPython's default runs it through pexpect, which forks the Python process
      (refused while student code runs); here the command runs as a plain subprocess (it
      never runs Python code of the grader's process) and its output goes into the cell's.
    * ``%matplotlib inline`` (or any other backend): the grader draws no figures on a screen;
      the magic chooses nothing and changes nothing (the grader's backend is Agg).
    """
    import subprocess

    run, pipe, devnull, merged = subprocess.run, subprocess.PIPE, subprocess.DEVNULL, subprocess.STDOUT

    def system(cmd, _sys=sys):
        command = shell.var_expand(cmd, depth=1)
        completed = run(command, shell=True, stdin=devnull, stdout=pipe, stderr=merged)
        _sys.stdout.write(completed.stdout.decode("utf-8", "replace"))
        shell.user_ns["_exit_code"] = completed.returncode

    def matplotlib(line=""):
        """The grader draws no figures: %matplotlib changes nothing here."""

    shell.system = system
    shell.register_magic_function(matplotlib, "line", "matplotlib")


def _compile_test(source, filename):
    """A test cell as IPython runs it: (statements, last expression or None), compiled."""
    import ast

    tree = ast.parse(source, filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = compile(ast.Expression(tree.body.pop().value), filename, "eval")
    return compile(tree, filename, "exec"), last


def main():
    """Run the plan; whatever goes wrong on the grader's thread ends the process without a word
    (the grader reads the missing results as a failed run), never through ``sys.excepthook``."""
    try:
        _run()
    except BaseException:  # noqa: BLE001 (KeyboardInterrupt, SystemExit, a forged error: all the same)
        os._exit(5)


def _not_dumpable():
    """PR_SET_DUMPABLE 0: no other process of the sandbox's uid (a child the cells start, where
    no audit hook runs) may read or write this process's memory (/proc/PID/mem) or trace it;
    it stays so across the cells (only an exec would reset it). Without it, refuse to run."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0 or libc.prctl(3, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE, PR_GET_DUMPABLE
        raise OSError(ctypes.get_errno(), "the protected run could not make itself non-dumpable")


def _run():
    import signal

    # A KeyboardInterrupt sent from the cells' thread (_thread.interrupt_main, pthread_kill) would
    # surface on this thread, the grader's: ignored, it never arrives.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _not_dumpable()
    plan = json.loads(sys.stdin.read())
    channel = os.dup(1)                          # the one way out; fd 1 and 2 go to a log file
    log = os.open("runner.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.setdefault("MPLBACKEND", "Agg")
    import marshal
    import time

    own_globals = globals()
    builtins_dict = vars(builtins)
    # What the main thread itself must find unchanged: the builtins and this module's names.
    trusted_items = ((builtins_dict, tuple(builtins_dict.items())), (own_globals, tuple(own_globals.items())))
    channel_id = os.fstat(channel)
    restore_trusted = _restore_trusted  # a local: what a student rebinds in this module cannot reach it

    def send(record):
        now = os.fstat(channel)
        if (now.st_dev, now.st_ino) != (channel_id.st_dev, channel_id.st_ino):
            os._exit(3)  # the channel was replaced: say nothing rather than through a stranger's pipe
        os.write(channel, (json.dumps(record) + "\n").encode())

    steps = plan["steps"]
    answers = tuple(plan.get("answer_names", ()))
    timeout = plan.get("timeout", 120)
    n_setup = 0
    while n_setup < len(steps) and steps[n_setup]["kind"] == "setup":
        n_setup += 1
    setup_steps = tuple(("setup", step["source"], None, (), ()) for step in steps[:n_setup])
    command_read, command_write = os.pipe()
    result_read, result_write = os.pipe()
    result_id = os.fstat(result_write)
    state, student_box, worker_ident = [], [None], []
    idle = threading.Event()
    guard = [False]
    student_started = [False]   # once True, every thread but the grader's is guarded
    recorded, refused = [], []
    missing = object()

    trusted_code = [frozenset()]   # code objects of the libraries, known once the set-up has run
    test_code = [frozenset()]      # code objects of the instructor's test cells (their comprehensions too)
    in_test, answers_called = [False], []
    inside_findings = []           # what the answers changed while a test ran, found when each call returned
    trusted_classes = [frozenset()]  # ids of the classes the loaded modules define, then

    def audit(event, args, _guard=guard, _ident=threading.get_ident, _worker=worker_ident, _blocked=BLOCKED_EVENTS,
              _internals=FUNCTION_INTERNALS, _recorded=recorded, _refused=refused, _type=type, _getattr=getattr,
              _isinstance=isinstance, _error=RuntimeError, _missing=missing, _frame=sys._getframe, _id=id,
              _trusted=trusted_code, _classes=trusted_classes, _is_memory_file=_is_memory_file,
              _main=threading.main_thread().ident, _started=student_started, _in_test=in_test,
              _test_code=test_code, _answers_called=answers_called):
        me = _ident()
        if me == _main or not _worker:
            return  # the grader's own thread, or the set-up before the cells' thread exists
        if me == _worker[0] and not _guard[0]:
            return  # the set-up cells, and the grader's work between steps
        if me != _worker[0] and not _started[0]:
            return  # a library's thread, before any student code ran
        # From here: student code, or any thread once student code has run (threads it started).
        if event == COURSE_ANSWER_EVENT:
            if _in_test[0]:
                caller = _student_caller(_frame(2), _trusted[0], _test_code[0])
                if caller is not None:
                    _answers_called.append((str(args[0]) if args else "?", caller))
            return
        if event in _blocked or event.startswith("ctypes."):
            _refused.append(event)
            raise _error(f"the grader does not allow {event} in graded code")
        if event == "open" and _is_memory_file(args[0]):
            _refused.append("open of a process's memory (/proc/.../mem)")
            raise _error("the grader does not allow opening a process's memory in graded code")
        if event == "object.__setattr__" or event == "object.__delattr__":
            target, name = args[0], args[1]
            if not (_isinstance(target, _type) or name in _internals):
                return
            if _getattr(target, "__module__", "__main__") == "__main__":
                return  # the notebook's own classes and functions
            if _isinstance(target, _type) and _id(target) not in _classes[0]:
                return  # a class made after the snapshot (by a module imported since): no test relies on it
            # Who sets it: a library's own code (lazy set-up, caches), or code the notebook wrote?
            setter = _frame(1).f_code
            by_library = _id(setter) in _trusted[0]
            try:
                old = (target.__dict__.get(name, _missing) if _isinstance(target, _type)
                       else object.__getattribute__(target, name))
            except AttributeError:
                old = _missing
            _recorded.append((target, name, old, event, by_library))

    sys.addaudithook(audit)
    thread = threading.Thread(target=_worker, name="crsky-cells", daemon=True,
                              args=(command_read, result_write, state, student_box, setup_steps, idle.set))
    thread.start()
    worker_ident.append(thread.ident)
    idle.wait(120)
    worker_code = _worker.__code__

    def wait_result(index, limit):
        deadline = time.monotonic() + limit
        if not select.select([result_read], [], [], limit)[0]:
            return None, []
        problems = []
        header = os.read(result_read, 8)
        try:
            size = int(header)
        except ValueError:
            return None, ["the notebook wrote into the grader's result pipe"]
        data = b""
        while len(data) < size:
            chunk = os.read(result_read, size - len(data))
            if not chunk:
                break
            data += chunk
        # A step is finished only when the worker thread is back in its wait for a command.
        while True:
            frame = sys._current_frames().get(thread.ident)
            if frame is not None and frame.f_code is worker_code and idle.is_set():
                break
            if time.monotonic() > deadline:
                problems.append("a result arrived while the notebook's code was still running (a forged result)")
                return None, problems
            time.sleep(0.005)
        if select.select([result_read], [], [], 0)[0]:
            problems.append("more than one result arrived for one step (the notebook wrote into the grader's pipe)")
            os.read(result_read, 1 << 20)
        now = os.fstat(result_write)
        if (now.st_dev, now.st_ino) != (result_id.st_dev, result_id.st_ino):
            problems.append("the grader's result pipe was replaced (os.dup2)")
        try:
            result = marshal.loads(data)
        except (ValueError, EOFError, TypeError):
            return None, problems + ["an unreadable result"]
        if type(result) is not tuple or len(result) != 8 or result[0] != index:
            return None, problems + ["a result for another step arrived (a forged result)"]
        return result[1:], problems

    snapshot = handlers = meta_path = entries = None
    class_items, digests = (), ()
    from hashlib import blake2b  # bound here, before any student code: the digest of the tests' data
    for index, step in enumerate(steps):
        kind = step["kind"]
        if index == n_setup:
            _import_tests_modules(steps[n_setup:])
            _watch_course_answers(plan.get("course_answers") or {})
            snapshot, base, handlers, meta_path, entries = _take_snapshot(state[0])
            digests = _data_digests(base, blake2b)
            known_threads = set(sys._current_frames())
            trusted_code[0], classes = _library_code(snapshot)
            trusted_classes[0] = frozenset(id(c) for c in classes)
            held_classes = classes  # noqa: F841 (kept alive: their ids stay theirs)
            class_items = _snapshot_classes(classes)
            student = []
            for later in steps[n_setup:]:
                compiled = (_compile_test(later["source"], f"<test {later.get('id')}>")
                            if later["kind"] == "test" else None)
                student.append((later["kind"], later["source"] if later["kind"] != "test" else "", compiled,
                                tuple(base.items()) if later["kind"] == "test" else (), answers))
            student_box[0] = tuple(student)
            student_box.append((_checked_call, functools.partial(
                _check_inside_test, inside_findings, restore_trusted, trusted_items, builtins_dict, missing,
                digests, blake2b, (snapshot, handlers, meta_path, recorded, missing, entries, class_items))))
            test_code[0] = frozenset(_code_ids(code for entry in student if entry[2] is not None
                                               for code in entry[2] if code is not None))
        idle.clear()
        guard[0] = kind != "setup"
        in_test[0] = kind == "test"
        student_started[0] = student_started[0] or guard[0]
        os.write(command_write, b"%08d" % index)
        result, problems = wait_result(index, timeout)
        guard[0] = in_test[0] = False
        # First, with nothing but bytecode, the builtins and this module's own names.
        findings = restore_trusted(trusted_items, builtins_dict, missing)
        findings += problems
        if refused:
            findings += [f"refused: {event}" for event in dict.fromkeys(refused)]
            refused.clear()
        for label, caller in dict.fromkeys(answers_called):
            findings.append(f"while the test ran, the student's code ({caller}) called {label}")
        answers_called.clear()
        tampered_during_test = False
        if snapshot is not None:
            changes = _restore(snapshot, handlers, meta_path, recorded, missing, entries, class_items)
            running = set(sys._current_frames()) - known_threads
            if running:  # it may act at any time, also while a later test runs: what it did cannot be told
                changes.append(f"started {len(running)} thread(s) of its own that still run")
            changes += inside_findings
            inside_findings.clear()
            changes += _changed_data(digests, blake2b)  # a write from a thread the step left behind
            findings += changes
            tampered_during_test = kind == "test" and bool(changes or problems)
        if result is None:
            send({"step": index, "status": "timeout" if not problems else "error", "findings": sorted(set(findings)),
                  "ename": "CellTimeoutError" if not problems else "TamperingDetected",
                  "evalue": f"no result within {timeout} s" if not problems else "; ".join(problems)})
            os._exit(0)
        status, ename, evalue, value, stdout, stderr, rebound = result
        if tampered_during_test and status == "ok":
            status, ename, evalue = "error", "TamperingDetected", "the code under test changed the grader's references"
        if rebound:
            findings.append("names of the test were rebound while it ran: " + ", ".join(map(str, rebound)))
            status, ename, evalue = "error", "TamperingDetected", "the test's own names were changed while it ran"
        send({"step": index, "status": status, "ename": ename, "evalue": evalue, "value": value,
              "stdout": stdout, "stderr": stderr, "findings": sorted(set(findings))})
    send({"end": len(steps)})
    os._exit(0)


def _import_tests_modules(steps):
    """Import, before the snapshot, the modules the test cells import: a module that only a
    test loads would otherwise be loaded first by the student's code, and what that code
    changed in it would be outside the trusted state."""
    import ast
    import importlib

    for step in steps:
        if step["kind"] != "test":
            continue
        try:
            tree = ast.parse(step["source"])
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                try:
                    importlib.import_module(name)
                except Exception:  # noqa: BLE001 (a name imported from a module, not a module)
                    pass


COURSE_ANSWER_EVENT = "crsky.course_answer"
AUDIT_NAME = "course_answer_audit"   # the name the watched functions' first line calls, in their module


def _watch_course_answers(course_answers):
    """Give each function ``course_answers`` names (``{"crsky.models.build_reference_model":
    "build_dgcnn", ...}``: the package's code that answers an exercise) a first line that raises
    :data:`COURSE_ANSWER_EVENT`. The function object stays the same (its ``__code__`` is
    replaced, recompiled from its source with the same file name and line numbers): every
    name it was imported under calls the watched code."""
    import ast
    import importlib
    import inspect
    import textwrap
    import types

    for dotted, exercise in sorted(course_answers.items()):
        module_name, _, name = dotted.rpartition(".")
        try:
            module = importlib.import_module(module_name)
            function = getattr(module, name)
            code = function.__code__
            tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        except Exception as error:  # noqa: BLE001 (a name that is not a plain function: say so in the log)
            print(f"course answer {dotted} not watched: {type(error).__name__}: {error}", file=sys.stderr)
            continue
        definition = tree.body[0]
        definition.decorator_list = []
        label = f"{dotted} (the course's own answer to {exercise})"
        line = ast.parse(f"{AUDIT_NAME}({COURSE_ANSWER_EVENT!r}, {label!r})").body[0]
        ast.copy_location(line, definition.body[0])
        for node in ast.walk(line):
            ast.copy_location(node, definition.body[0])
        definition.body.insert(0, line)
        ast.increment_lineno(tree, code.co_firstlineno - definition.lineno)
        compiled = compile(tree, code.co_filename, "exec")
        new = next(c for c in compiled.co_consts if isinstance(c, types.CodeType) and c.co_name == code.co_name)
        if new.co_freevars != code.co_freevars:
            print(f"course answer {dotted} not watched: a closure", file=sys.stderr)
            continue
        vars(module).setdefault(AUDIT_NAME, sys.audit)
        function.__globals__.setdefault(AUDIT_NAME, sys.audit)
        function.__code__ = new


def _student_caller(frame, library_code, test_code):
    """Where the student's code called the frame's function: the first caller up the stack that
    is neither a library's code nor a test's; None when a test called it (through libraries)."""
    while frame is not None:
        code = frame.f_code
        if id(code) in test_code:
            return None
        if id(code) not in library_code:
            name = code.co_name if code.co_name != "<module>" else "a cell"
            return f"{name}, line {frame.f_lineno}"
        frame = frame.f_back
    return None


def _code_ids(codes):
    """ids of the code objects and of every code object nested in them (comprehensions, lambdas)."""
    import types

    found, todo = set(), list(codes)
    while todo:
        code = todo.pop()
        if id(code) not in found:
            found.add(id(code))
            todo += [const for const in code.co_consts if isinstance(const, types.CodeType)]
    return found


STEP_STREAMS = frozenset({("sys", "stdout"), ("sys", "stderr")})  # the step's own output capture


def _restore_trusted(trusted_items, builtins_dict, missing):
    """Put back the builtins and this module's own names, with nothing but bytecode and dict
    methods; one finding per name that had changed."""
    findings = []
    for namespace, items in trusted_items:
        for name, value in items:
            if namespace.get(name, missing) is not value:
                namespace[name] = value
                findings.append(f"replaced builtins.{name}" if namespace is builtins_dict else
                                f"changed the grader's own {name}")
    return findings


def _check_inside_test(findings, restore_trusted, trusted_items, builtins_dict, missing, digests, blake2b, state):
    """Compare with the trusted state and put it back, from the cells' thread while a test runs:
    first this module's own names (which :func:`_restore` is looked up by), then the rest
    (signal handlers can only be put back by the main thread, after the step), then the bytes
    of the tests' read-only arrays (which cannot be put back: a change fails the test)."""
    changes = restore_trusted(trusted_items, builtins_dict, missing)
    changes += _restore(*state, skip=STEP_STREAMS, inside=True)
    changes += _changed_data(digests, blake2b)
    findings.extend(f"while a test ran: {change}" for change in changes)


def _take_snapshot(shell):
    """The trusted state, taken after the set-up cells and before any student code."""
    import signal

    np = sys.modules.get("numpy")
    base = {name: _freeze(value, np) for name, value in shell.user_ns.items()
            if not name.startswith("_") and name not in ("In", "Out", "exit", "quit", "get_ipython")}
    handlers = []
    for number in range(1, signal.NSIG):
        try:
            handlers.append((number, signal.getsignal(number)))
        except (ValueError, OSError):
            pass
    user = shell.user_ns
    modules = tuple(m for m in _snapshot_modules() if m[1] is not user)  # the notebook's namespace is the student's
    entries = tuple((name, module) for name, module in sys.modules.items() if name != "__main__")
    return modules, base, tuple(handlers), tuple(sys.meta_path), entries


_THREAD_LOCAL = _thread._local  # bound before any student code (threading.local can be rebound)
BENIGN_PREFIXES = ("__warningregistry__", "__loader__", "__spec__", "_abc_")
# Packages whose non-callable public attributes (constants such as numpy.pi) are guarded too.
WATCHED_DATA = frozenset({"builtins", "numpy", "keras", "networkx", "crsky", "edgeconv", "math", "sys"})


def _library_code(snapshot):
    """ids of the code objects of every function and method the loaded modules define
    (nested functions included): the code a library runs on its own; and the classes they
    define (those whose attributes the audit hook guards)."""
    import types

    codes, seen = [], set()

    def add(value, depth):
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, types.FunctionType):
            codes.append(value.__code__)
        elif isinstance(value, (staticmethod, classmethod)):
            add(value.__func__, depth)
        elif isinstance(value, property):
            for accessor in (value.fget, value.fset, value.fdel):
                if accessor is not None:
                    add(accessor, depth)
        elif isinstance(value, type):
            classes.append(value)
            if depth < 2:
                for item in list(value.__dict__.values()):
                    add(item, depth + 1)

    classes = []
    for _, _, items in snapshot:
        for _, value in items:
            add(value, 0)
    return frozenset(_code_ids(codes)), tuple(classes)


HEAP_TYPE = 1 << 9   # Py_TPFLAGS_HEAPTYPE: a class made by Python code (built-in types cannot be changed)
# Names libraries add to or change in a class's own dict by themselves: copyreg's cache of slot
# names, abc's registry, the docs of a lazily built class.
BENIGN_CLASS_NAMES = frozenset({"__slotnames__", "__abstractmethods__", "__doc__", "__annotations__"})


def _snapshot_classes(classes):
    """((class, its dict, ((name, value), ...)), ...) for the classes the loaded modules define
    that Python code can change. Python 3.11 raises no audit event for ``Class.name = value``
    (``type.__setattr__``), so the classes' own dicts are compared after every student step."""
    return tuple((cls, cls.__dict__, tuple(cls.__dict__.items())) for cls in classes
                 if type.__dict__["__flags__"].__get__(cls) & HEAP_TYPE
                 and not str(getattr(cls, "__module__", "")).endswith("_pb2"))  # protobuf's generated messages


def _code_like(value):
    """A function, method wrapper or property: what a class's behaviour is made of (not a cache)."""
    import types

    return isinstance(value, (types.FunctionType, property, classmethod, staticmethod))


def _watched_class_change(name, old, new, missing):
    """Whether a change of a class attribute is the student's business: any public name; a
    private one only when code is replaced (libraries keep caches in private class attributes,
    matplotlib's ``Path._unit_circle``)."""
    if name in BENIGN_CLASS_NAMES or name.startswith("_abc_"):
        return False
    if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
        return True
    return (old is not missing and _code_like(old)) or (new is not missing and _code_like(new))


def _restore_classes(class_items, missing, recorded=()):
    """Name each attribute a student step set, replaced or deleted in a library's class, and
    put the class back as it was. Changes the audit hook saw (``recorded``: it knows whether a
    library made them) are left to :func:`_restore`."""
    findings = []
    seen = {(id(target), name) for target, name, *_ in recorded if isinstance(target, type)}
    for cls, namespace, items in class_items:
        if len(namespace) == len(items):
            get = namespace.get
            if all(get(name, missing) is value for name, value in items):
                continue
        label = f"{cls.__module__}.{cls.__qualname__}"
        before = dict(items)
        for name in [name for name in namespace if name not in before]:
            # A new name matters when it hides one of a base class or is code; libraries add
            # data of their own lazily (protobuf's enum values, caches).
            if (id(cls), name) in seen or not _watched_class_change(name, missing, namespace[name], missing) or \
                    not (_code_like(namespace[name]) or any(name in vars(base) for base in cls.__mro__[1:])):
                continue
            findings.append(f"set {label}.{name} (an attribute of a library's class)")
            try:
                type.__delattr__(cls, name)
            except (AttributeError, TypeError):
                pass
        for name, value in items:
            now = namespace.get(name, missing)
            if now is value or (id(cls), name) in seen or not _watched_class_change(name, value, now, missing):
                continue
            findings.append(f"{'deleted' if now is missing else 'replaced'} {label}.{name} (an attribute of a library's class)")
            try:
                type.__setattr__(cls, name, value)
            except (AttributeError, TypeError):
                pass
    return findings


def _benign(old, new):
    """Changes libraries make by themselves: lazy modules resolved, caches, a library's
    per-thread state started afresh (``keras.backend.clear_session()`` binds new
    ``threading.local`` objects: what they can hold, the library's setters set anyway)."""
    import types

    return isinstance(old, types.ModuleType) or isinstance(new, types.ModuleType) or \
        type(old).__name__ in ("LazyLoader", "LazyModule", "_LazyModule") or \
        (type(old) is _THREAD_LOCAL and type(new) is _THREAD_LOCAL)


def _restore(snapshot, handlers, meta_path, recorded, missing, entries=(), class_items=(), skip=frozenset(),
             inside=False):
    """Name every difference from the trusted state and put the originals back (but for the
    ``(module, name)`` pairs in ``skip``). ``inside``: called while a test runs, when the
    attribute stores the audit hook recorded are left for after the step."""
    import signal

    findings = _restore_classes(class_items, missing, recorded)
    for module_name, namespace, items in snapshot:
        get = namespace.get
        for name, value in items:
            now = get(name, missing)
            if now is value or (module_name, name) in skip:
                continue
            if name.startswith(BENIGN_PREFIXES) or (now is not missing and _benign(value, now)):
                continue
            if not (callable(value) or module_name.split(".")[0] in WATCHED_DATA) or \
                    (name.startswith("_") and module_name != "builtins"):
                continue  # a library's own state (a context, a cache, a flag): not what the tests call
            where = "builtins" if module_name == "builtins" else module_name
            findings.append(f"{'deleted' if now is missing else 'replaced'} {where}.{name}")
            namespace[name] = value
    while recorded and not inside:  # inside a test, a library's own changes (recorded) are left to run their course
        target, name, old, event, by_library = recorded.pop()
        label = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}.{name}"
        if not by_library and not name.startswith("_abc_"):
            findings.append(f"{'deleted' if event.endswith('delattr__') else 'changed'} {label}")
        try:
            if old is missing:
                type.__delattr__(target, name) if isinstance(target, type) else object.__delattr__(target, name)
            elif isinstance(target, type):
                type.__setattr__(target, name, old)
            else:
                object.__setattr__(target, name, old)
        except (AttributeError, TypeError):
            pass
    # The modules an import finds: an entry of sys.modules replaced or dropped hands the next
    # ``import`` (a test's) another module than the one the snapshot guards.
    modules = sys.modules
    for name, module in entries:
        now = modules.get(name, missing)
        if now is module:
            continue
        if now is not missing and type(module).__name__ in ("LazyLoader", "LazyModule", "_LazyModule"):
            continue  # a lazy module that loaded itself
        findings.append(f"{'dropped' if now is missing else 'replaced'} sys.modules[{name!r}]")
        modules[name] = module
    if tuple(sys.meta_path) != meta_path:
        findings.append("changed sys.meta_path (import hooks)")
        sys.meta_path[:] = list(meta_path)
    for number, handler in handlers:
        if signal.getsignal(number) is not handler:
            findings.append(f"installed a handler for signal {signal.Signals(number).name}")
            try:
                signal.signal(number, handler)
            except (ValueError, OSError, TypeError):
                pass
    for timer in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF):
        if signal.getitimer(timer) != (0.0, 0.0):
            findings.append("started an interval timer (signal.setitimer/alarm)")
            signal.setitimer(timer, 0)
    return sorted(set(findings))


if __name__ == "__main__":
    main()
