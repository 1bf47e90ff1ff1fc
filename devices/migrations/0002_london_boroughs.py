"""Load the 32 London boroughs with the Metropolitan Police's two-letter borough codes."""

from django.db import migrations

LONDON_BOROUGHS = [
    ("KG", "Barking and Dagenham"),
    ("SX", "Barnet"),
    ("RY", "Bexley"),
    ("QK", "Brent"),
    ("PY", "Bromley"),
    ("EK", "Camden"),
    ("ZD", "Croydon"),
    ("XD", "Ealing"),
    ("YE", "Enfield"),
    ("RG", "Greenwich"),
    ("GD", "Hackney"),
    ("FH", "Hammersmith and Fulham"),
    ("YR", "Haringey"),
    ("QA", "Harrow"),
    ("KD", "Havering"),
    ("XH", "Hillingdon"),
    ("TX", "Hounslow"),
    ("NI", "Islington"),
    ("BS", "Kensington and Chelsea"),
    ("VK", "Kingston upon Thames"),
    ("LX", "Lambeth"),
    ("PL", "Lewisham"),
    ("VW", "Merton"),
    ("KF", "Newham"),
    ("JI", "Redbridge"),
    ("TW", "Richmond upon Thames"),
    ("MD", "Southwark"),
    ("ZT", "Sutton"),
    ("HT", "Tower Hamlets"),
    ("JC", "Waltham Forest"),
    ("WW", "Wandsworth"),
    ("CW", "Westminster"),
]


def load_boroughs(apps, schema_editor):
    Borough = apps.get_model("devices", "Borough")
    for code, name in LONDON_BOROUGHS:
        Borough.objects.update_or_create(code=code, defaults={"name": name})


def unload_boroughs(apps, schema_editor):
    Borough = apps.get_model("devices", "Borough")
    Borough.objects.filter(code__in=[code for code, _ in LONDON_BOROUGHS]).delete()


class Migration(migrations.Migration):
    dependencies = [("devices", "0001_initial")]
    operations = [migrations.RunPython(load_boroughs, unload_boroughs)]
