"""internimage.analysis.benchmark: the report tables print every row they are given."""

from internimage.analysis.benchmark import print_table


def test_rows_print_with_and_without_a_header(capsys):
    widths = [5, 3]
    print_table(['shape', 'ms'], [['s1', '1.0']], widths)
    print_table([], [['s2', '2.0']], widths)  # a later row of the same table
    lines = capsys.readouterr().out.splitlines()
    assert lines == ['shape | ms ', '------|----', 's1    | 1.0', 's2    | 2.0']
