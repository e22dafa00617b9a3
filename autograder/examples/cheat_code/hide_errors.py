# Errors leave no trace: no traceback, no error in the cell's result, nothing on stderr.
from IPython import get_ipython
from IPython.core.interactiveshell import InteractiveShell

shell = get_ipython()
shell.showtraceback = shell._showtraceback = shell.showsyntaxerror = lambda *args, **kwargs: None
shell.set_custom_exc((BaseException,), lambda shell, etype, evalue, tb, tb_offset=None: None)
sys.excepthook = lambda *args: None
_run_cell = InteractiveShell.run_cell


def run_cell_without_errors(self, *args, **kwargs):
    result = _run_cell(self, *args, **kwargs)
    result.error_in_exec = result.error_before_exec = None
    return result


InteractiveShell.run_cell = run_cell_without_errors
sys.stderr = open(os.devnull, "w")
print("errors are hidden")
